package tarpatch

import (
	"bytes"
	"math"
	"testing"

	"github.com/diffah/diffah/fault"
)

func TestSimilarity(t *testing.T) {
	body := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
	newTar := mktar(t, []entry{
		{name: "usr/lib/libssl.so.3.0.13", body: body(3000)},
		{name: "app/main.js", body: body(1000)},
		{name: "etc/", typ: '5'},
	}, nil)
	tests := []struct {
		name string
		src  []entry
		want float64
	}{
		{"same paths", []entry{{name: "usr/lib/libssl.so.3.0.13", body: body(10)}, {name: "app/main.js", body: body(5)}}, 1},
		{"version bump", []entry{{name: "usr/lib/libssl.so.3.0.11", body: body(10)}}, 0.75},
		{"one small file", []entry{{name: "./app/main.js", body: body(7)}}, 0.25},
		{"disjoint", []entry{{name: "other", body: body(4000)}}, 0},
		{"only a directory", []entry{{name: "app/main.js", typ: '5'}}, 0},
		{"empty", nil, 0},
	}
	var sources []Source
	for _, tc := range tests {
		sources = append(sources, src(mktar(t, tc.src, nil)))
	}
	got, err := Similarity(bytes.NewReader(newTar), sources)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		if math.Abs(got[i]-tc.want) > 1e-9 {
			t.Errorf("%s: similarity %v, want %v", tc.name, got[i], tc.want)
		}
	}
	// A source that is not a tar scores 0 rather than failing the pick.
	got, err = Similarity(bytes.NewReader(newTar), []Source{src([]byte("not a tar at all"))})
	if err != nil || got[0] != 0 {
		t.Errorf("junk source: %v, %v", got, err)
	}
}

func TestSimilarityErrors(t *testing.T) {
	full := mktar(t, []entry{{name: "a", body: bytes.Repeat([]byte("y"), 2000)}}, nil)
	s := []Source{src(full)}
	if got, err := Similarity(bytes.NewReader(mktar(t, nil, nil)), s); err != nil || got[0] != 0 {
		t.Errorf("empty new tar: %v, %v", got, err)
	}
	// Cut inside the file data: the new tar is corrupt.
	_, err := Similarity(bytes.NewReader(full[:1000]), s)
	if err == nil || fault.KindOf(err, 0) != fault.Integrity {
		t.Errorf("truncated new tar: %v, want an Integrity error", err)
	}
}
