package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestCorpusDiff checks `diffah diff --semantic` against GNU diff on the
// benchmark corpus (real images; `make bench` runs it): for every pair
// whose images differ in one layer, the files diffah reports changed,
// added or removed are exactly those `diff -rq` finds between the two
// layers extracted by GNU tar. It runs only when DIFFAH_CORPUS names a
// corpus directory (scripts/corpus.sh).
func TestCorpusDiff(t *testing.T) {
	dir := os.Getenv("DIFFAH_CORPUS")
	if dir == "" {
		t.Skip("set DIFFAH_CORPUS to a corpus directory (make corpus) to run")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "pairs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Pairs []struct {
			Name, Old, New string
			Changed        []struct{ OldTar, NewTar string }
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Pairs {
		if len(p.Changed) != 1 || p.Name == "large" {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			c := p.Changed[0]
			want := gnuDiff(t, filepath.Join(dir, c.OldTar), filepath.Join(dir, c.NewTar))
			var out, errb bytes.Buffer
			code := run([]string{"diff", "--semantic", "--json", "oci:" + filepath.Join(dir, p.Old), "oci:" + filepath.Join(dir, p.New)}, nil, &out, &errb)
			if code != 1 {
				t.Fatalf("diff exit %d, want 1 (different): %s", code, errb.String())
			}
			var rep struct {
				Changes []struct{ Type, Name string }
			}
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ch := range rep.Changes {
				if ch.Type == "File" {
					got = append(got, strings.TrimPrefix(ch.Name, "/"))
				}
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("diffah reports %d files, GNU diff %d:\ndiffah: %.2000s\ndiff:   %.2000s", len(got), len(want), strings.Join(got, " "), strings.Join(want, " "))
			}
			t.Logf("%s: %d files differ, as GNU diff says", p.Name, len(got))
		})
	}
}

// gnuDiff extracts two layer tars with GNU tar and lists, sorted, the
// paths `diff -rq --no-dereference` reports (changed, or only on one
// side; for a directory only on one side, every path under it).
func gnuDiff(t *testing.T, oldTar, newTar string) []string {
	t.Helper()
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	for _, x := range [][2]string{{oldTar, a}, {newTar, b}} {
		os.MkdirAll(x[1], 0o755)
		if out, err := exec.Command("tar", "-xf", x[0], "-C", x[1]).CombinedOutput(); err != nil {
			t.Fatalf("tar -xf %s: %v\n%s", x[0], err, out)
		}
	}
	cmd := exec.Command("diff", "-rq", "--no-dereference", a, b)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("diff -rq: %v", err)
	}
	differ := regexp.MustCompile(`^(?:Files|Symbolic links) (.+) and (.+) differ$`)
	only := regexp.MustCompile(`^Only in (.+): (.+)$`)
	set := map[string]bool{}
	rel := func(p string) string {
		for _, root := range []string{a, b} {
			if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
				return r
			}
		}
		t.Fatalf("path %s is in neither tree", p)
		return ""
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch m := differ.FindStringSubmatch(line); {
		case m != nil:
			set[rel(m[1])] = true
		case only.MatchString(line):
			m := only.FindStringSubmatch(line)
			full := filepath.Join(m[1], m[2])
			filepath.Walk(full, func(p string, fi os.FileInfo, err error) error {
				if err == nil {
					set[rel(p)] = true
				}
				return nil
			})
		case line != "":
			t.Fatalf("unexpected diff output: %q", line)
		}
	}
	var list []string
	for p := range set {
		list = append(list, p)
	}
	sort.Strings(list)
	return list
}
