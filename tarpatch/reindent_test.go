package tarpatch

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// bundle is line-structured code, as a bundler writes it.
func bundle(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	depth := 0
	for b.Len() < n {
		fmt.Fprintf(&b, "%*sconst value%d = compute(%d, options.field%d);\n", depth, "", rng.Intn(1000), rng.Intn(1000), rng.Intn(50))
		switch rng.Intn(8) {
		case 0:
			depth += 2
		case 1:
			depth = max(0, depth-2)
		case 2:
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

// Shifting piece by piece gives what shifting the whole range gives,
// wherever the pieces are cut.
func TestReindentPieces(t *testing.T) {
	b := append(bundle(1, 20000), []byte("   \n    x\n  ")...)
	rng := rand.New(rand.NewSource(2))
	for _, shift := range []int{-maxShift, -3, -2, -1, 1, 2, 5, maxShift} {
		want := reindented(b, shift)
		for range 20 {
			var got []byte
			st := lineStart
			for rest := b; len(rest) > 0; {
				k := min(len(rest), 1+rng.Intn(40))
				got, st = reindent(got, rest[:k], shift, st)
				rest = rest[k:]
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("shift %d: pieces give %d bytes, whole %d", shift, len(got), len(want))
			}
		}
	}
	if got := reindented([]byte("a\n\n  b\n"), 2); string(got) != "  a\n\n    b\n" {
		t.Fatalf("right shift: %q", got)
	}
	if got := reindented([]byte("a\n   b\n c\n"), -2); string(got) != "a\n b\nc\n" {
		t.Fatalf("left shift: %q", got)
	}
}

func TestIndentShift(t *testing.T) {
	b := bundle(3, 200<<10)
	for _, shift := range []int{-2, 2, 4} {
		if got := indentShift(b, reindented(b, shift)); got != shift && !(shift < 0 && got == 0) {
			t.Fatalf("indentShift = %d, want %d", got, shift)
		}
	}
	if got := indentShift(b, b); got != 0 {
		t.Fatalf("same indentation: shift %d", got)
	}
	if got := indentShift(b, bundle(4, 200<<10)); got != 0 {
		t.Fatalf("unrelated text: shift %d", got)
	}
}

// The same code bundled twice, the second time two spaces deeper (as in
// TypeScript's tsserver.js and typescript.js): the second costs little
// once the first, re-indented, is in its dictionary.
func TestReindentedBundlePaidOnce(t *testing.T) {
	code := bundle(5, 1<<20)
	filler := rnd(6, SmallLayer)
	old := mktar(t, []entry{{name: "lib/a.js", body: bundle(7, 1<<20)}, {name: "lib/b.js", body: bundle(8, 1<<20)}, {name: "filler", body: filler}}, nil)
	newTar := mktar(t, []entry{{name: "lib/a.js", body: code}, {name: "lib/b.js", body: mutate(reindented(code, 2), 9, 3)}}, nil)
	o := EncodeOptions{FileByFile: true}
	_, with := roundTrip(t, newTar, [][]byte{old}, o)
	_, alone := roundTrip(t, mktar(t, []entry{{name: "lib/a.js", body: code}}, nil), [][]byte{old}, o)
	t.Logf("both files %d bytes, the first alone %d", len(with), len(alone))
	if len(with) > len(alone)*11/10 {
		t.Fatalf("both files %d bytes, the first alone %d: the re-indented copy is not paid once", len(with), len(alone))
	}
}

// A shifted range's size after the shift is what MaxDict bounds.
func TestShiftedDictionaryBounded(t *testing.T) {
	old := bytes.Repeat([]byte("a\n"), 3<<20) // 6 MiB, 3 Mi lines
	tarOld := mktar(t, []entry{{name: "x", body: old}}, nil)
	// One DELTA whose dictionary is the whole file shifted by maxShift:
	// 3 Mi lines * 18 bytes, past MaxDict.
	b := append([]byte{opDelta}, appendRanges(nil, []loc{{src: 0, off: 512, size: int64(len(old)), shift: maxShift}})...)
	b = append(b, 1, 1, 0, opEnd)
	p := zstdPatch(t, b)
	err := Decode(context.Background(), &bytes.Buffer{}, bytes.NewReader(p), []Source{src(tarOld)}, DecodeOptions{MaxOutput: 1 << 20})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("larger than")) {
		t.Fatalf("err = %v, want the dictionary bound", err)
	}
	// A shift past maxShift is refused.
	b = append([]byte{opDelta}, appendRanges(nil, []loc{{src: 0, off: 512, size: 10, shift: maxShift + 1}})...)
	b = append(b, 1, 1, 0, opEnd)
	err = Decode(context.Background(), &bytes.Buffer{}, bytes.NewReader(zstdPatch(t, b)), []Source{src(tarOld)}, DecodeOptions{MaxOutput: 1 << 20})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("shift")) {
		t.Fatalf("err = %v, want the shift refused", err)
	}
}

// zstdPatch frames an op stream (END included) as a current-format patch.
func zstdPatch(t *testing.T, ops []byte) []byte {
	t.Helper()
	enc, err := newEncoders(zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte{}, magic...), enc.plain.EncodeAll(ops, nil)...)
}

// Format 2 (for patches embedded in diffah-deflate/1) writes what a
// diffah-tar/2 reader decodes: its magic, no shifts.
func TestEncodeFormat2(t *testing.T) {
	old, _ := fuzzSource(t)
	c := seedCases(t)["reindent"]
	newTar := mktar(t, c.ents, nil)
	o := c.o
	o.Format = 2
	_, p2 := roundTrip(t, newTar, [][]byte{old}, o)
	_, p3 := roundTrip(t, newTar, [][]byte{old}, c.o)
	if !bytes.HasPrefix(p2, magicV2) || !bytes.HasPrefix(p3, magic) {
		t.Fatalf("magics %q, %q", p2[:8], p3[:8])
	}
	if len(p3) >= len(p2) {
		t.Fatalf("format 3 %d bytes, format 2 %d: the shifted range did not help", len(p3), len(p2))
	}
	o.Format = 5
	if _, err := Encode(context.Background(), &bytes.Buffer{}, bytes.NewReader(newTar), []Source{src(old)}, o); err == nil {
		t.Fatal("format 5 accepted")
	}
}
