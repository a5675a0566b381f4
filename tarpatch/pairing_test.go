package tarpatch

import (
	"testing"
)

// A file's old version found by content: one whose path now holds a
// different program, and one moved to a path no version-number rule
// relates to its old one.
func TestPairingByContent(t *testing.T) {
	a, b, c := rnd(1, 1<<20), rnd(2, 1<<20), rnd(3, 512<<10)
	old := mktar(t, []entry{
		{name: "opt/go/bin/gofmt", body: a},
		{name: "usr/local/bin/goimports", body: b},
		{name: "usr/lib/libfoo.so.1", body: c},
		// Past SmallLayer, so the shared stream's dictionary is not the
		// whole source.
		{name: "filler", body: rnd(12, SmallLayer)},
	}, nil)
	newTar := mktar(t, []entry{
		// gofmt replaced by a build of goimports.
		{name: "opt/go/bin/gofmt", body: mutate(b, 4, 30)},
		{name: "usr/lib/x86_64/libbar.so", body: mutate(c, 5, 30)},
	}, nil)
	o := EncodeOptions{FileByFile: true}
	_, with := roundTrip(t, newTar, [][]byte{old}, o)
	pairEnabled = false
	_, without := roundTrip(t, newTar, [][]byte{old}, o)
	pairEnabled = true
	t.Logf("paired by content %d bytes, by path only %d", len(with), len(without))
	if len(with) > len(without)/20 {
		t.Fatalf("paired by content %d bytes, by path only %d: no gain", len(with), len(without))
	}
}

// A rebuilt file keeps its path match when it shares more with it than
// with a lookalike.
func TestPairingKeepsPathMatch(t *testing.T) {
	a := rnd(6, 1<<20)
	look := append(append([]byte(nil), a[:1<<19]...), rnd(7, 1<<19)...)
	ix := &index{byPath: map[string]loc{}, byNorm: map[string][]loc{}, sketches: &sketchIndex{}}
	la := loc{src: 0, off: 0, size: int64(len(a)), name: "bin/a"}
	ll := loc{src: 0, off: 1 << 21, size: int64(len(look)), name: "bin/look"}
	ix.byPath["bin/a"] = la
	ix.sketches.add(la, sketchOf(a))
	ix.sketches.add(ll, sketchOf(look))
	ix.sketches.finish()
	nw := mutate(a, 8, 50)
	got, ok := ix.pick("bin/a", int64(len(nw)), nw)
	if !ok || got != la {
		t.Fatalf("pick = %+v, %v; want the path match %+v", got, ok, la)
	}
	// With no path match, the closest by content.
	got, ok = ix.pick("bin/b", int64(len(nw)), nw)
	if !ok || got != la {
		t.Fatalf("pick for a new path = %+v, %v; want %+v", got, ok, la)
	}
}

// Anchors depend on content, not position: a shifted copy keeps most
// fingerprints.
func TestSketchSurvivesShift(t *testing.T) {
	a := rnd(9, 1<<20)
	shifted := append(rnd(10, 777), a...)
	if n := shared(sketchOf(a), sketchOf(shifted)); n < sketchK*3/4 {
		t.Fatalf("shifted copy shares %d of %d fingerprints", n, sketchK)
	}
	if n := shared(sketchOf(a), sketchOf(rnd(11, 1<<20))); n > 1 {
		t.Fatalf("unrelated data shares %d fingerprints", n)
	}
}
