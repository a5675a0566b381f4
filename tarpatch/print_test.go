package tarpatch

import (
	"bytes"
	"testing"
)

// A new layer holding a renamed copy of a file an earlier layer holds
// finds that layer by content, and what its own sources already hold
// gains nothing.
func TestPrintGains(t *testing.T) {
	bin := rnd(1, 64<<10)
	other := rnd(2, 32<<10)
	print := func(ents []entry) *Print {
		t.Helper()
		p, err := Fingerprint(bytes.NewReader(mktar(t, ents, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := print([]entry{{name: "srv/amber", body: bin}, {name: "srv/amber.json", body: []byte("{}")}})
	unrelated := print([]entry{{name: "data/x", body: other}})
	byPath := print([]entry{{name: "srv/brisk", body: other}})
	layer := print([]entry{{name: "srv/brisk", body: bin}, {name: "srv/brisk.json", body: []byte("{}")}})
	if first.Total != int64(len(bin)+2) || len(first.files) != 1 {
		t.Fatalf("print of first: total %d, %d files (small ones count in Total only)", first.Total, len(first.files))
	}
	ix := NewPrintIndex()
	for _, p := range []*Print{unrelated, first, byPath} {
		ix.Add(p)
	}
	g := ix.Gains(layer, nil)
	if g[1] != int64(len(bin)) || g[0] != 0 || g[2] != int64(len(bin)) {
		t.Fatalf("gains without own sources: %v (want the copy and the path match to gain the binary)", g)
	}
	// Own sources holding an old version by path: only the copy gains.
	g = ix.Gains(layer, []*Print{byPath})
	if g[1] != int64(len(bin)) || g[2] != 0 {
		t.Fatalf("gains beside an old version: %v", g)
	}
	// Own sources holding the content: nothing to gain.
	if g = ix.Gains(layer, []*Print{first}); len(g) != 0 {
		t.Fatalf("gains beside the same content: %v", g)
	}
}

// A file larger than one chunk that a source holds under another name is
// copied chunk by chunk: the patch is a few bytes.
func TestLargeIdenticalFileCopied(t *testing.T) {
	bin := rnd(3, 3<<20+123)
	src := mktar(t, []entry{{name: "srv/amber", body: bin}}, nil)
	newTar := mktar(t, []entry{{name: "srv/brisk", body: bin}, {name: "srv/brisk.json", body: []byte(`{"port": 1}`)}}, nil)
	st, patch := roundTrip(t, newTar, [][]byte{src}, EncodeOptions{MaxChunk: 1 << 20, FileByFile: true})
	if len(patch) > 512 || st.Copied < 4 {
		t.Fatalf("renamed 3 MiB file: %d-byte patch, %+v", len(patch), st)
	}
	// One chunk differs: the rest is still copied.
	edited := append([]byte(nil), bin...)
	copy(edited[1<<20+5:], rnd(4, 100))
	newTar = mktar(t, []entry{{name: "srv/brisk", body: edited}}, nil)
	_, patch = roundTrip(t, newTar, [][]byte{src}, EncodeOptions{MaxChunk: 1 << 20, FileByFile: true})
	if len(patch) > 4<<10 {
		t.Fatalf("renamed file with one edited chunk: %d-byte patch", len(patch))
	}
}

func FuzzFingerprint(f *testing.F) {
	f.Add(mktar(f, []entry{{name: "a", body: rnd(1, 5000)}, {name: "b/c-1.2", body: rnd(2, 4096)}}, nil))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Fingerprint(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err) // an in-memory reader never fails
		}
		var sum int64
		for _, fl := range p.files {
			sum += fl.size
		}
		if sum > p.Total || sum > int64(len(data)) {
			t.Fatalf("print records %d bytes of files (of %d) in %d bytes of input", sum, p.Total, len(data))
		}
		ix := NewPrintIndex()
		ix.Add(p)
		for _, g := range ix.Gains(p, nil) {
			if g > sum {
				t.Fatalf("gain %d above the recorded bytes %d", g, sum)
			}
		}
	})
}
