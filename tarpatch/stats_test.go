package tarpatch

import (
	"bytes"
	"context"
	"testing"
)

func costOf(t *testing.T, c *Costs, path string) FileCost {
	t.Helper()
	for _, f := range c.Files {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("no cost for %s in %+v", path, c.Files)
	return FileCost{}
}

// Every byte of the patch is attributed, to a file or to the rest; an
// unchanged file costs next to nothing, a new incompressible file about
// its size, an edited file about what its delta frame takes; the costliest
// comes first; and asking for costs does not change the patch.
func TestFileCostsAddUp(t *testing.T) {
	big := rnd(1, 3<<20) // over SmallLayer with the rest: the file-by-file form
	lib := rnd(2, 6<<20)
	text := textData(3, 200<<10)
	old := mktar(t, []entry{
		{name: "usr/lib/libbig.so", body: lib},
		{name: "etc/unchanged.conf", body: textData(4, 50<<10)},
		{name: "usr/share/app.js", body: text},
		{name: "usr/bin/blob", body: big},
	}, nil)
	newTar := mktar(t, []entry{
		{name: "usr/lib/libbig.so", body: mutate(lib, 5, 40)},
		{name: "etc/unchanged.conf", body: textData(4, 50<<10)},
		{name: "usr/share/app.js", body: mutate(text, 6, 10)},
		{name: "usr/bin/blob", body: big},
		{name: "usr/share/new.bin", body: rnd(7, 300<<10)},
		{name: "usr/share/empty", body: nil},
		{name: "usr/share/dir/", typ: '5'},
	}, nil)
	var plainPatch, withCosts bytes.Buffer
	if _, err := Encode(context.Background(), &plainPatch, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	st, err := Encode(context.Background(), &withCosts, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{Jobs: 1, FileCosts: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plainPatch.Bytes(), withCosts.Bytes()) {
		t.Fatal("FileCosts changed the patch")
	}
	c := st.Costs
	if c == nil || c.Whole {
		t.Fatalf("costs %+v", c)
	}
	if len(c.Files) != 5 { // the empty file and the directory have no content
		t.Fatalf("%d files: %+v", len(c.Files), c.Files)
	}
	sum := c.Meta
	for _, f := range c.Files {
		if f.Bytes < 0 {
			t.Fatalf("negative cost %+v", f)
		}
		sum += f.Bytes
	}
	if sum != st.PatchSize || c.Meta < int64(len(magic)) {
		t.Fatalf("files + meta = %d, patch is %d bytes (meta %d)", sum, st.PatchSize, c.Meta)
	}
	if f := costOf(t, c, "etc/unchanged.conf"); f.Encoding != "copy" || f.Bytes > 16 || f.OldPath != "etc/unchanged.conf" {
		t.Errorf("unchanged file: %+v", f)
	}
	if f := costOf(t, c, "usr/bin/blob"); f.Encoding != "copy" || f.Bytes > 16 || f.OldSize != int64(len(big)) {
		t.Errorf("unchanged large file: %+v", f)
	}
	nb := costOf(t, c, "usr/share/new.bin")
	if nb.OldPath != "" || nb.Bytes < 290<<10 || nb.Bytes > 320<<10 || !nb.Estimated {
		t.Errorf("new random file: %+v", nb)
	}
	so := costOf(t, c, "usr/lib/libbig.so")
	if so.OldPath != "usr/lib/libbig.so" || so.OldSize != int64(len(lib)) || so.Bytes <= 0 || so.Bytes > 64<<10 || so.Encoding == "copy" || so.Encoding == "lit" {
		t.Errorf("edited library: %+v", so)
	}
	if js := costOf(t, c, "usr/share/app.js"); js.Bytes <= 0 || js.Bytes > so.Bytes+nb.Bytes {
		t.Errorf("edited text: %+v", js)
	}
	top := c.Costliest()
	if top[0].Path != "usr/share/new.bin" {
		t.Errorf("costliest first: %+v", top)
	}
	for i := 1; i < len(top); i++ {
		if top[i].Bytes > top[i-1].Bytes {
			t.Fatalf("not sorted: %+v", top)
		}
	}
}

// A small layer whose whole form wins: every share is an estimate, the
// encoding says "whole", and the shares still add up to the patch.
func TestFileCostsWholeForm(t *testing.T) {
	a, b := textData(10, 30<<10), textData(11, 20<<10)
	old := mktar(t, []entry{{name: "a.txt", body: a}, {name: "b.txt", body: b}}, nil)
	newTar := mktar(t, []entry{{name: "a.txt", body: mutate(a, 12, 3)}, {name: "b.txt", body: b}, {name: "c.txt", body: textData(13, 5<<10)}}, nil)
	var w bytes.Buffer
	st, err := Encode(context.Background(), &w, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{FileCosts: true})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Whole {
		t.Skip("the file-by-file form won on this input")
	}
	c := st.Costs
	sum := c.Meta
	for _, f := range c.Files {
		if f.Encoding != map[bool]string{true: "copy", false: "whole"}[f.Path == "b.txt"] || !f.Estimated {
			t.Errorf("%+v", f)
		}
		sum += f.Bytes
	}
	if !c.Whole || sum != st.PatchSize || c.Meta < 0 {
		t.Fatalf("whole %v: files + meta = %d, patch %d", c.Whole, sum, st.PatchSize)
	}
}

// finish never makes a share negative and always adds up, whatever the
// stream size against the op bytes (a stream smaller than its frames: all
// scaled; no plain bytes at all).
func TestFinishAddsUp(t *testing.T) {
	for _, stream := range []int64{0, 1, 50, 99, 100, 101, 1000, 1 << 20} {
		a := &costAcc{meta: 7}
		for i, n := range []int64{0, 1, 3, 100} {
			f := a.file("f"+string(rune('a'+i)), n, loc{}, false)
			a.op(f, opDelta, n)
			a.op(f, opLit, n/2)
		}
		c := a.finish(8, stream)
		sum := c.Meta
		for _, f := range c.Files {
			if f.Bytes < 0 {
				t.Fatalf("stream %d: %+v", stream, f)
			}
			sum += f.Bytes
		}
		if sum != 8+stream || c.Meta < 0 {
			t.Fatalf("stream %d: sum %d meta %d", stream, sum, c.Meta)
		}
	}
}
