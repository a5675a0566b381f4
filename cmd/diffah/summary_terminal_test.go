package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSummaryOnTerminal: export shows its planning phase ("detecting the
// compressor of layer N/M") and ends with one summary line on a terminal
// (size, share saved, layers patched/reused/whole), import with what it
// wrote and how it was verified; nothing on a non-terminal stderr unless
// --log-level info, and nothing with --quiet.
func TestSummaryOnTerminal(t *testing.T) {
	fx := fixtures(t)
	tty, log := drain(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	var stdout bytes.Buffer
	if code := run([]string{"export", "--name", "app", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1", "-o", delta}, strings.NewReader(""), &stdout, tty); code != 0 {
		t.Fatalf("export: exit %d: %s", code, log.take())
	}
	got := log.take()
	sum := regexp.MustCompile(`wrote ` + regexp.QuoteMeta(delta) + `: [0-9.]+ (B|KiB|MiB) \(\d+% of [0-9.]+ (KiB|MiB) saved\): \d+ layers? patched, \d+ reused, \d+ shipped whole`)
	if !sum.MatchString(got) {
		t.Errorf("export on a terminal: no summary line: %q", got)
	}
	if !regexp.MustCompile(`\r\x1b\[Kplan: detecting the compressor of layer \d+/\d+`).MatchString(got) {
		t.Errorf("export on a terminal: no planning phase line: %q", got)
	}
	// Encoding: the changed layers' bytes out of their total, and the
	// rate (the ETA follows while bytes remain: progress.TestLine).
	if !regexp.MustCompile(`\r\x1b\[Kpack: encoding \d+ changed layers?  [0-9.]+ (B|KiB|MiB) / [0-9.]+ (B|KiB|MiB) \(\d+%\)  [0-9.]+ (B|KiB|MiB)/s`).MatchString(got) {
		t.Errorf("export on a terminal: no encoding phase line (bytes of changed layers, rate): %q", got)
	}
	if !regexp.MustCompile(`\r\x1b\[Kpack: writing  `).MatchString(got) {
		t.Errorf("export on a terminal: no writing phase line: %q", got)
	}

	out := filepath.Join(work, "out")
	if code := run([]string{"import", "--baseline", "oci:" + fx + "/v1", "-o", "oci:" + out, delta}, strings.NewReader(""), &stdout, tty); code != 0 {
		t.Fatalf("import: exit %d: %s", code, log.take())
	}
	if got := log.take(); !strings.Contains(got, "wrote oci:"+out+": image app sha256:") || !strings.Contains(got, "verified") {
		t.Errorf("import on a terminal: no final line saying what it wrote and how it was verified: %q", got)
	}
	if stdout.Len() != 0 {
		t.Errorf("summaries reached stdout: %q", stdout.String())
	}

	// --quiet: nothing.
	if code := run([]string{"-q", "export", "--force", "--name", "app", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1", "-o", delta}, strings.NewReader(""), &stdout, tty); code != 0 {
		t.Fatal("export -q")
	}
	if got := log.take(); got != "" {
		t.Errorf("--quiet drew on the terminal: %q", got)
	}
	// Not a terminal: nothing, unless --log-level info.
	var errb bytes.Buffer
	if code := run([]string{"export", "--force", "--name", "app", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1", "-o", delta}, strings.NewReader(""), &stdout, &errb); code != 0 {
		t.Fatal("export")
	}
	if errb.Len() != 0 {
		t.Errorf("export wrote to a non-terminal stderr: %q", errb.String())
	}
	if code := run([]string{"--log-level", "info", "export", "--force", "--name", "app", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1", "-o", delta}, strings.NewReader(""), &stdout, &errb); code != 0 {
		t.Fatal("export")
	}
	if !strings.Contains(errb.String(), "wrote "+delta) {
		t.Errorf("--log-level info: no summary in the log: %q", errb.String())
	}
}
