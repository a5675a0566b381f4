package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestHelpExamples: every command's --help has examples, and every flag
// it takes (long or short form) is used in one of them.
func TestHelpExamples(t *testing.T) {
	flagLine := regexp.MustCompile(`^\s+(?:(-[a-z]), )?(--[a-z][a-z-]*)`)
	for _, cmd := range []string{"plan", "pack", "unpack", "resolve", "export", "import", "inspect", "diff", "keygen", "version"} {
		t.Run(cmd, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run([]string{cmd, "--help"}, nil, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			help := out.String()
			i := strings.Index(help, "\nFlags:\n")
			if i < 0 {
				t.Fatalf("no Flags section:\n%s", help)
			}
			text, flags := help[:i], help[i:]
			if a := strings.Index(text, "\nArguments:\n"); a >= 0 {
				text = text[:a]
			}
			if !strings.Contains(text, "Example") {
				t.Fatalf("no examples:\n%s", help)
			}
			for _, line := range strings.Split(flags, "\n") {
				m := flagLine.FindStringSubmatch(line)
				if m == nil || m[2] == "--help" {
					continue
				}
				used := regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(m[2]) + `(\s|=|$)`).MatchString(text)
				if m[1] != "" {
					used = used || regexp.MustCompile(`(^|\s|\()`+regexp.QuoteMeta(m[1])+`(\s|\)|$)`).MatchString(text)
				}
				if !used {
					t.Errorf("flag %s has no example in `diffah %s --help`", m[2], cmd)
				}
			}
		})
	}
}
