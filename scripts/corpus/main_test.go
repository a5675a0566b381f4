package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tree writes files (path → content; a "->" prefix makes a symlink) under
// a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(c, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func layersOf(t *testing.T, dir string) []v1.Hash {
	t.Helper()
	img, err := single(dir)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ds []v1.Hash
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

func TestBuildDeterministic(t *testing.T) {
	base := tree(t, map[string]string{"etc/os-release": "ID=test\n", "bin/sh": "\x7fELF...", "bin/dash": "->sh"})
	out := t.TempDir()
	a, b := filepath.Join(out, "a"), filepath.Join(out, "b")
	if err := build(a, []string{base}); err != nil {
		t.Fatal(err)
	}
	// Newer mtimes must not change the layer.
	if err := os.Chtimes(filepath.Join(base, "etc/os-release"), mtime.AddDate(1, 0, 0), mtime.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := build(b, []string{base}); err != nil {
		t.Fatal(err)
	}
	if la, lb := layersOf(t, a), layersOf(t, b); len(la) != 1 || la[0] != lb[0] {
		t.Fatalf("two builds of one tree: %v and %v", la, lb)
	}
	if err := build(a, []string{base}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("building over an existing layout: %v", err)
	}
	if err := build(filepath.Join(out, "c"), []string{filepath.Join(out, "nope")}); err == nil {
		t.Fatal("a missing directory was packed")
	}
	if _, err := os.Stat(filepath.Join(out, "c")); !os.IsNotExist(err) {
		t.Fatalf("a failed build left %s: %v", filepath.Join(out, "c"), err)
	}

	// The tar holds sorted entries with fixed times and owners.
	img, _ := single(a)
	ls, _ := img.Layers()
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(mtime) || h.Uid != 0 || h.Uname != "" {
			t.Errorf("%s: mtime %v uid %d uname %q", h.Name, h.ModTime, h.Uid, h.Uname)
		}
		if h.Name == "bin/dash" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "sh") {
			t.Errorf("bin/dash: type %c link %q", h.Typeflag, h.Linkname)
		}
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != "bin/ bin/dash bin/sh etc/ etc/os-release" {
		t.Errorf("entries %s", got)
	}
}

func TestPairs(t *testing.T) {
	corpus := t.TempDir()
	base := tree(t, map[string]string{"etc/os-release": "ID=test\n"})
	mid := tree(t, map[string]string{"lib/x": "shared"})
	appOld := tree(t, map[string]string{"app/bin": strings.Repeat("old ", 1000)})
	appNew := tree(t, map[string]string{"app/bin": strings.Repeat("old ", 999) + "new "})
	for _, b := range []struct{ out, top string }{{"p/old", appOld}, {"p/new", appNew}} {
		if err := build(filepath.Join(corpus, b.out), []string{base, mid, b.top}); err != nil {
			t.Fatal(err)
		}
	}
	// A new image with an extra layer: its match is the old image's last.
	if err := build(filepath.Join(corpus, "q/old"), []string{base}); err != nil {
		t.Fatal(err)
	}
	if err := build(filepath.Join(corpus, "q/new"), []string{base, appNew}); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(corpus, "p", "tars", "stale.tar")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	for run := 0; run < 2; run++ { // the second run reuses the tars
		if err := writePairs(corpus, []string{"p", "q", "absent"}, io.Discard); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(corpus, "pairs.json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Pairs []Pair }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Pairs) != 2 || doc.Pairs[0].Name != "p" || doc.Pairs[1].Name != "q" {
			t.Fatalf("pairs %+v", doc.Pairs)
		}
		p, q := doc.Pairs[0], doc.Pairs[1]
		if p.Old != "p/old" || p.New != "p/new" || len(p.Changed) != 1 || p.Changed[0].Index != 2 {
			t.Fatalf("pair p: %+v", p)
		}
		if len(q.Changed) != 1 || q.Changed[0].Index != 1 || q.Changed[0].OldDigest != layersOf(t, filepath.Join(corpus, "q/old"))[0].String() {
			t.Fatalf("pair q: %+v", q)
		}
		c := p.Changed[0]
		if c.NewDigest != layersOf(t, filepath.Join(corpus, "p/new"))[2].String() || c.OldDigest != layersOf(t, filepath.Join(corpus, "p/old"))[2].String() {
			t.Errorf("digests %+v", c)
		}
		for _, x := range []struct {
			path string
			size int64
			want string
		}{{c.OldTar, c.OldSize, "old "}, {c.NewTar, c.NewSize, "new "}} {
			f, err := os.Open(filepath.Join(corpus, x.path))
			if err != nil {
				t.Fatal(err)
			}
			h, n, err := v1.SHA256(f)
			f.Close()
			if err != nil || n != x.size || h.Hex+".tar" != filepath.Base(x.path) {
				t.Errorf("%s: %s, %d bytes (listed %d), %v", x.path, h, n, x.size, err)
			}
		}
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Errorf("stale tar kept: %v", err)
		}
	}

	if err := writePairs(corpus, []string{"absent"}, io.Discard); err == nil || !strings.Contains(err.Error(), "corpus.sh") {
		t.Errorf("no pairs: %v", err)
	}
	if err := run([]string{"-o", "x"}, io.Discard); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("no directories: %v", err)
	}
}

// TestCorruptLayerRefused: a tar is only kept if it matches the diffID.
func TestCorruptLayerRefused(t *testing.T) {
	corpus := t.TempDir()
	if err := build(filepath.Join(corpus, "p/old"), []string{tree(t, map[string]string{"a": "1"})}); err != nil {
		t.Fatal(err)
	}
	if err := build(filepath.Join(corpus, "p/new"), []string{tree(t, map[string]string{"a": "2"})}); err != nil {
		t.Fatal(err)
	}
	img, _ := single(filepath.Join(corpus, "p/new"))
	cf, _ := img.ConfigFile()
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	// Swap the new layer's blob for the old one's: same gzip framing,
	// content that does not hash to the config's diffID.
	oldImg, _ := single(filepath.Join(corpus, "p/old"))
	ols, _ := oldImg.Layers()
	od, _ := ols[0].Digest()
	blob, err := os.ReadFile(filepath.Join(corpus, "p/old/blobs/sha256", od.Hex))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corpus, "p/new/blobs/sha256", d.Hex), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	err = writePairs(corpus, []string{"p"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("got %v, want a corrupt-layout error", err)
	}
	if _, err := os.Stat(filepath.Join(corpus, "p/tars", cf.RootFS.DiffIDs[0].Hex+".tar")); !os.IsNotExist(err) {
		t.Errorf("the bad tar was kept: %v", err)
	}
}
