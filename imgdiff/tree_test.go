package imgdiff

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/diffah/diffah/fault"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   string
		unsafe bool
	}{
		{"etc/passwd", "/etc/passwd", false},
		{"./etc/passwd", "/etc/passwd", false},
		{"/etc/passwd", "/etc/passwd", false},
		{"etc/", "/etc", false},
		{"./", "/", false},
		{".", "/", false},
		{"a/../b", "/b", false},
		{"//a//b/", "/a/b", false},
		{"../x", "/../x", true},
		{"./../../x", "/../../x", true},
		{"..", "/..", true},
		{"a/../../x", "/../x", true},
	} {
		got := normalize(tc.in)
		if unsafe := climbsOut(got); got != tc.want || unsafe != tc.unsafe {
			t.Errorf("normalize(%q) = %q, %v; want %q, %v", tc.in, got, unsafe, tc.want, tc.unsafe)
		}
	}
}

func indexOf(t *testing.T, ents ...ent) *layerIndex {
	t.Helper()
	ix, err := readIndex(context.Background(), bytes.NewReader(tarBytes(t, ents...)), "test", newBudget())
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestApplyLayer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]ent
		want   []string
	}{
		{"whiteout hides lower file", [][]ent{{file("a", ""), file("b", "")}, {whiteout(".wh.a")}}, []string{"/b"}},
		{"whiteout hides lower dir and contents", [][]ent{{dir("d/"), file("d/x", ""), file("dx", "")}, {whiteout(".wh.d")}}, []string{"/dx"}},
		{"whiteout spares own layer", [][]ent{{file("a", "")}, {file("a", "new"), whiteout(".wh.a")}}, []string{"/a"}},
		{"opaque keeps dir, drops lower children", [][]ent{{dir("d/"), file("d/x", ""), file("e", "")}, {dir("d/"), whiteout("d/.wh..wh..opq"), file("d/y", "")}}, []string{"/d", "/d/y", "/e"}},
		{"opaque at root", [][]ent{{file("a", "")}, {whiteout(".wh..wh..opq"), file("b", "")}}, []string{"/b"}},
		{"file replaces dir", [][]ent{{dir("d/"), file("d/x", "")}, {file("d", "")}}, []string{"/d"}},
		{"file replaces implied dir", [][]ent{{file("d/x", ""), file("d/e/y", "")}, {file("d", "")}}, []string{"/d"}},
		{"symlink replaces dir", [][]ent{{dir("d/"), file("d/x", "")}, {symlink("d", "/tmp")}}, []string{"/d"}},
		{"dir regrows after whiteout", [][]ent{{file("d/x", "")}, {whiteout(".wh.d")}, {file("d/y", "")}}, []string{"/d/y"}},
		{"regrown deep dir hidden again", [][]ent{{file("a/b/x", "")}, {whiteout(".wh.a")}, {file("a/b/y", "")}, {whiteout(".wh.a")}}, nil},
		{"whiteout of implied dir", [][]ent{{file("d/x", ""), file("d/e/y", ""), file("dz", "")}, {whiteout(".wh.d")}}, []string{"/dz"}},
		{"dir over dir keeps children", [][]ent{{dir("d/"), file("d/x", "")}, {dir("d/").mode(0o700)}}, []string{"/d", "/d/x"}},
		{"whiteout of missing path", [][]ent{{file("a", "")}, {whiteout(".wh.zz")}}, []string{"/a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFilesystem()
			for _, l := range tc.layers {
				fs.apply(indexOf(t, l...))
			}
			var got []string
			for n := range fs.entries {
				got = append(got, n)
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadIndexEntries(t *testing.T) {
	ix := indexOf(t,
		file("f", "body"),
		ent{h: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		ent{h: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o600}},
		hardlink("h", "./f"),
		file("f", "second").mode(0o4755), // a repeated name: the last one wins, as on extraction
		whiteout("d/.wh.gone"),
		whiteout("d/.wh."),   // only looks like a whiteout
		whiteout("d/.wh.."),  // would delete d itself: a plain file
		whiteout("d/.wh..."), // would delete d's parent: a plain file
	)
	want := map[string]string{
		"/f":          sum("second") + " 4755 0:0 6B",
		"/dev/null":   "char 1,3 0666 0:0",
		"/p":          "fifo 0600 0:0",
		"/h":          "=> /f",
		"/d/.wh.gone": "whiteout",
		"/d/.wh.":     sum("") + " 0644 0:0 0B",
		"/d/.wh..":    sum("") + " 0644 0:0 0B",
		"/d/.wh...":   sum("") + " 0644 0:0 0B",
	}
	if len(ix.byName) != len(want) || len(ix.order) != len(want) {
		t.Errorf("%d entries (%d in order), want %d", len(ix.byName), len(ix.order), len(want))
	}
	for name, desc := range want {
		e := ix.byName[name]
		if e == nil {
			t.Errorf("%s missing", name)
			continue
		}
		if got := e.describe(nil); got != desc {
			t.Errorf("%s: %q, want %q", name, got, desc)
		}
	}
	if e := ix.byName["/d/.wh.gone"]; e.displayName() != "/d/gone" {
		t.Errorf("whiteout named %q", e.displayName())
	}
}

// failingLayer is a layer whose stream cannot be opened.
type failingLayer struct{ v1.Layer }

func (failingLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("connection reset")
}

func TestCompareErrors(t *testing.T) {
	good := image(t, nil, layer(t, file("a", "A")))

	garbage, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(strings.Repeat("not a tar ", 100))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	full := tarBytes(t, file("a", strings.Repeat("x", 4096)))
	truncated, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(full[:1024])), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	unreachable := failingLayer{layer(t, file("b", "B"))}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	for _, tc := range []struct {
		name     string
		ctx      context.Context
		img      v1.Image
		kind     fault.Kind
		contains []string
	}{
		{"not a tar", context.Background(), image(t, nil, garbage), fault.Integrity, []string{"layer 0", digestOf(t, garbage), "tar header"}},
		{"truncated", context.Background(), image(t, nil, truncated), fault.Integrity, []string{"layer 0", digestOf(t, truncated), "reading a"}},
		{"unreachable", context.Background(), image(t, nil, unreachable), fault.Env, []string{"layer 0", digestOf(t, unreachable), "connection reset"}},
		{"cancelled", cancelled, image(t, nil, layer(t, file("c", "C"))), 0, []string{"context canceled"}},
	} {
		for _, o := range []Options{{}, {Semantic: true}} {
			_, err := Compare(tc.ctx, good, tc.img, o)
			if err == nil {
				t.Errorf("%s (semantic=%v): no error", tc.name, o.Semantic)
				continue
			}
			if got := fault.KindOf(err, 0); got != tc.kind {
				t.Errorf("%s (semantic=%v): kind %v, want %v: %v", tc.name, o.Semantic, got, tc.kind, err)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%s (semantic=%v): %q lacks %q", tc.name, o.Semantic, err, s)
				}
			}
		}
	}

	lying := image(t, func(c *v1.ConfigFile) {
		c.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	}, layer(t, file("a", "A")))
	_, err = Compare(context.Background(), good, lying, Options{Semantic: true})
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "config says diffID sha256:000") {
		t.Errorf("config with a wrong diffID: %v", err)
	}

	if _, err := Compare(context.Background(), good, nil, Options{}); fault.KindOf(err, 0) != fault.Usage {
		t.Errorf("nil image: %v", err)
	}
	for _, bad := range []string{`[1]`, `null`, `{} {}`, `{"a":1`, ``} {
		if _, err := compareConfigs([]byte(`{}`), []byte(bad), false); fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "input-1") {
			t.Errorf("config %q: %v", bad, err)
		}
	}
}

func digestOf(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// FuzzReadIndex feeds arbitrary bytes to the layer parser: it must fail
// cleanly or produce entries that flatten and compare equal to themselves.
func FuzzReadIndex(f *testing.F) {
	f.Add(tarBytes(f, dir("d/"), file("d/f", "x"), symlink("l", "../../etc"), whiteout("d/.wh..wh..opq")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := readIndex(context.Background(), bytes.NewReader(data), "fuzz", newBudget())
		if err != nil {
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("parse failure not tagged Integrity: %v", err)
			}
			return
		}
		fs := newFilesystem()
		fs.apply(ix)
		if cs := compareEntries(fs.entries, fs.entries, NoLayer, false); len(cs) != 0 {
			t.Fatalf("entries differ from themselves: %+v", cs)
		}
		for _, e := range ix.order {
			if !strings.HasPrefix(e.name, "/") {
				t.Fatalf("name %q not rooted", e.name)
			}
			e.describe([]string{"user", "xattrs", "mtime", "atime", "ctime"})
		}
	})
}
