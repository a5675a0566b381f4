package imgdiff

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
)

// tree lists the regular files under dir with their contents, and fails on
// anything else but directories.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			t.Errorf("report holds non-regular %s (%v)", p, d.Type())
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestReportDir(t *testing.T) {
	img0, img1 := basePair(t)
	// Both modes write each side's flattened view of the differing paths:
	// the whiteout in side 1 hides /etc/hosts, /app/l is a symlink and is
	// not written, /app/o differs only in metadata so strict mode writes it.
	for _, tc := range []struct {
		o      Options
		input0 map[string]string
		input1 map[string]string
	}{
		{
			Options{Semantic: true},
			map[string]string{"app/a": "one", "app/b": "two", "app/gone": "x", "app/m": "m", "app/x": "x", "etc/hosts": "h"},
			map[string]string{"app/a": "ONE", "app/b": "two", "app/m": "m", "app/new": "n", "app/x": "x"},
		},
		{
			Options{},
			map[string]string{"app/a": "one", "app/b": "two", "app/gone": "x", "app/m": "m", "app/o": "o", "app/x": "x", "etc/hosts": "h"},
			map[string]string{"app/a": "ONE", "app/b": "two", "app/m": "m", "app/new": "n", "app/o": "o", "app/x": "x"},
		},
	} {
		dir := filepath.Join(t.TempDir(), "report")
		tc.o.ReportDir = dir
		compare(t, img0, img1, tc.o)
		for side, want := range []map[string]string{tc.input0, tc.input1} {
			got := tree(t, filepath.Join(dir, []string{"input-0", "input-1"}[side]))
			if strings.Join(keys(got), " ") != strings.Join(keys(want), " ") {
				t.Errorf("semantic=%v input-%d files = %v, want %v", tc.o.Semantic, side, keys(got), keys(want))
				continue
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("semantic=%v input-%d/%s = %q, want %q", tc.o.Semantic, side, k, got[k], v)
				}
			}
		}
	}
}

func TestReportDirLayerOrder(t *testing.T) {
	// The upper layer's version is written; an opaque whiteout in the same
	// layer as a file does not hide it, but hides the lower layer's.
	img0 := image(t, nil,
		layer(t, file("d/f", "old"), file("d/g", "lower")),
		layer(t, file("d/f", "new"), whiteout("d/.wh..wh..opq")))
	img1 := image(t, nil, layer(t, file("d/f", "other"), file("d/g", "kept")))
	dir := t.TempDir()
	compare(t, img0, img1, Options{Semantic: true, ReportDir: dir})
	got := tree(t, filepath.Join(dir, "input-0"))
	if len(got) != 1 || got["d/f"] != "new" {
		t.Errorf("input-0 = %v, want only d/f=new", got)
	}
	if got := tree(t, filepath.Join(dir, "input-1")); got["d/f"] != "other" || got["d/g"] != "kept" {
		t.Errorf("input-1 = %v", got)
	}
}

func TestReportDirRefusesEscape(t *testing.T) {
	img0 := image(t, nil, layer(t, file("a", "A")))
	img1 := image(t, nil, layer(t, file("a", "A"), file("../escaped", "evil"), file("./../../deeper/x", "evil")))
	parent := t.TempDir()
	dir := filepath.Join(parent, "report")

	// Without a report dir the entry is reported under its own name.
	r := compare(t, img0, img1, Options{Semantic: true})
	if names := []string{r.Changes[0].Name, r.Changes[1].Name}; names[0] != "/../../deeper/x" || names[1] != "/../escaped" {
		t.Errorf("names = %v", names)
	}

	_, err := Compare(context.Background(), img0, img1, Options{Semantic: true, ReportDir: dir})
	if err == nil || fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "climbs out") {
		t.Fatalf("err = %v, want an Integrity error refusing the name", err)
	}
	for _, p := range []string{filepath.Join(parent, "escaped"), filepath.Join(parent, "deeper"), filepath.Join(dir, "escaped")} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after a refused report (err %v)", p, err)
		}
	}
}

func TestReportDirExisting(t *testing.T) {
	img0, img1 := basePair(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "input-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Compare(context.Background(), img0, img1, Options{ReportDir: dir})
	if fault.KindOf(err, 0) != fault.Usage || fault.HintOf(err) == "" {
		t.Errorf("err = %v (kind %v), want a Usage error with a hint", err, fault.KindOf(err, 0))
	}
}

func TestReportDirEqual(t *testing.T) {
	img0, _ := basePair(t)
	dir := t.TempDir()
	compare(t, img0, img0, Options{ReportDir: dir})
	for _, s := range []string{"input-0", "input-1"} {
		if got := tree(t, filepath.Join(dir, s)); len(got) != 0 {
			t.Errorf("%s = %v, want empty for equal images", s, got)
		}
	}
}

func TestReportDirReplacedAncestor(t *testing.T) {
	// In side 0 a symlink replaces the directory x (implied by its files),
	// hiding x/f: only side 1 has x/f to write, and no symlink is written.
	img0 := image(t, nil, layer(t, file("x/f", "1"), file("x/g", "2")), layer(t, symlink("x", "/etc")))
	img1 := image(t, nil, layer(t, file("x/f", "1")))
	dir := t.TempDir()
	r := compare(t, img0, img1, Options{Semantic: true, ReportDir: dir})
	assertChanges(t, "changes", r.Changes, []Change{
		{TypeSymlink, NoLayer, "/x", "-> /etc 0777 0:0", "-", "removed"},
		{TypeFile, NoLayer, "/x/f", "-", sum("1") + " 0644 0:0 1B", "added"},
	})
	if got := tree(t, filepath.Join(dir, "input-0")); len(got) != 0 {
		t.Errorf("input-0 = %v, want empty", got)
	}
	if got := tree(t, filepath.Join(dir, "input-1")); len(got) != 1 || got["x/f"] != "1" {
		t.Errorf("input-1 = %v, want x/f", got)
	}
}

func TestReportDirTypeFlips(t *testing.T) {
	// Side 0: x/y, then a file x hides it (the directory left on disk must
	// give way). Side 2: a file x, then x/y needs x as a directory.
	img0 := image(t, nil, layer(t, file("x/y", "1")), layer(t, file("x", "file")))
	img1 := image(t, nil, layer(t, file("x/y", "2")))
	img2 := image(t, nil, layer(t, file("x", "file")), layer(t, file("x/y", "3")))
	for _, tc := range []struct {
		name     string
		a, b     v1.Image
		in0, in1 map[string]string
	}{
		{"file over dir", img0, img1, map[string]string{"x": "file"}, map[string]string{"x/y": "2"}},
		{"dir over file", img2, img1, map[string]string{"x/y": "3"}, map[string]string{"x/y": "2"}},
		{"dir entry over file", image(t, nil, layer(t, file("x", "file")), layer(t, dir("x/"))),
			image(t, nil, layer(t, file("x", "other"))), map[string]string{}, map[string]string{"x": "other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			compare(t, tc.a, tc.b, Options{Semantic: true, ReportDir: dir})
			for side, want := range []map[string]string{tc.in0, tc.in1} {
				got := tree(t, filepath.Join(dir, []string{"input-0", "input-1"}[side]))
				if strings.Join(keys(got), " ") != strings.Join(keys(want), " ") {
					t.Errorf("input-%d = %v, want %v", side, got, want)
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("input-%d/%s = %q, want %q", side, k, got[k], v)
					}
				}
			}
		})
	}
}
