package tarpatch

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
)

// fakeELF is a minimal ELF64 little-endian file: code, then one
// SHF_COMPRESSED section holding debug compressed with compress/zlib at
// level (as Go's linker writes DWARF), then the section headers.
func fakeELF(t testing.TB, code, debug []byte, level int) []byte {
	t.Helper()
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, level)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(debug)
	zw.Close()
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(b[18:], 62)
	b = append(b, code...)
	secOff := len(b)
	chdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(chdr, 1) // ELFCOMPRESS_ZLIB
	binary.LittleEndian.PutUint64(chdr[8:], uint64(len(debug)))
	b = append(append(b, chdr...), z.Bytes()...)
	shoff := len(b)
	sh := make([]byte, 128)                         // a null section and the compressed one
	binary.LittleEndian.PutUint32(sh[64+4:], 1)     // PROGBITS
	binary.LittleEndian.PutUint64(sh[64+8:], 0x800) // SHF_COMPRESSED
	binary.LittleEndian.PutUint64(sh[64+24:], uint64(secOff))
	binary.LittleEndian.PutUint64(sh[64+32:], uint64(24+z.Len()))
	b = append(b, sh...)
	binary.LittleEndian.PutUint64(b[0x28:], uint64(shoff))
	binary.LittleEndian.PutUint16(b[0x3A:], 64)
	binary.LittleEndian.PutUint16(b[0x3C:], 2)
	return b
}

func TestElfZlibSections(t *testing.T) {
	debug := textData(30, 100<<10)
	f := fakeELF(t, fakeCode(31, 4096), debug, zlib.BestSpeed)
	ps := elfZlibSections(f)
	if len(ps) != 1 || ps[0].off != 64+4096+24 {
		t.Fatalf("sections %+v", ps)
	}
	exp, kept := expand(f, ps, true)
	if len(kept) != 1 || kept[0].level != 1 || kept[0].ilen != int64(len(debug)) || !bytes.Contains(exp, debug) {
		t.Fatalf("expand: %+v", kept)
	}
	// Not reproducible by compress/zlib (zstd's... here: stored blocks
	// under a level-1 header): left compressed.
	stored := fakeELF(t, nil, debug, zlib.NoCompression)
	stored[64+24+1] = 0x01
	if _, kept := expand(stored, elfZlibSections(stored), true); kept != nil {
		t.Fatalf("kept an irreproducible stream: %+v", kept)
	}
	// Garbage section tables are ignored, not trusted.
	for _, b := range [][]byte{nil, []byte("\x7fELF\x02\x01"), f[:100], append(append([]byte{}, f[:0x28]...), bytes.Repeat([]byte{0xff}, 64)...)} {
		if ps := elfZlibSections(b); ps != nil {
			t.Fatalf("sections %+v from garbage", ps)
		}
	}
}

// TestXADiffRebuiltGoBinary: a rebuild whose compressed DWARF changed
// throughout costs little with XADIFF (the expanded sections differ a
// little) and round-trips byte for byte.
func TestXADiffRebuiltGoBinary(t *testing.T) {
	code := fakeCode(32, 256<<10)
	debug := textData(33, 400<<10)
	old := mktar(t, []entry{{name: "usr/local/bin/app", body: fakeELF(t, code, debug, zlib.BestSpeed)}}, nil)
	nb := fakeELF(t, relink(code, 34, 0x40), mutate(debug, 35, 20), zlib.BestSpeed)
	newTar := mktar(t, []entry{{name: "usr/local/bin/app", body: nb}}, nil)
	o := EncodeOptions{FileByFile: true}
	st, with := roundTrip(t, newTar, [][]byte{old}, o)
	xadiffEnabled = false
	_, without := roundTrip(t, newTar, [][]byte{old}, o)
	xadiffEnabled = true
	t.Logf("XADIFF %d bytes, without %d", len(with), len(without))
	if st.ADiffs != 1 || len(with) > len(without)/4 {
		t.Fatalf("XADIFF patch %d bytes (stats %+v), without %d", len(with), st, len(without))
	}
}

// xadiffPatch builds a v2 patch of one XADIFF op from its parts.
func xadiffPatch(t *testing.T, ranges []loc, outLen uint64, dp, np []zpiece, expLen uint64, ctrl, diff, extra, xdict []byte) []byte {
	t.Helper()
	enc, err := newEncoders(zstd.SpeedBestCompression)
	if err != nil {
		t.Fatal(err)
	}
	b := appendXADiffHead(appendRanges([]byte{opXADiff}, ranges), outLen, dp, np, expLen)
	for i, s := range [][]byte{ctrl, diff, extra} {
		z := enc.plain.EncodeAll(s, nil)
		if i == 2 {
			if z, err = enc.withDict(xdict, s); err != nil {
				t.Fatal(err)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(z)))
		b = append(b, z...)
	}
	b = append(b, opEnd)
	return append(append([]byte{}, magic...), enc.plain.EncodeAll(b, nil)...)
}

func TestXADiffDecodeHostile(t *testing.T) {
	debug := textData(40, 20<<10)
	old := fakeELF(t, fakeCode(41, 2048), debug, zlib.BestSpeed)
	srcs := []Source{src(old)}
	whole := []loc{{src: 0, off: 0, size: int64(len(old))}}
	nw := fakeELF(t, fakeCode(41, 2048), mutate(debug, 42, 3), zlib.BestSpeed)
	expNew, np := expand(nw, elfZlibSections(nw), true)
	expOld, dp := expand(old, elfZlibSections(old), false)
	if np == nil || dp == nil {
		t.Fatal("nothing to expand")
	}
	ctrl, diff, extra := adiffStreams(expOld, expNew)
	mk := func(outLen uint64, dp, np []zpiece, expLen uint64) []byte {
		return xadiffPatch(t, whole, outLen, dp, np, expLen, ctrl, diff, extra, expOld)
	}
	dec := func(p []byte, max int64) error {
		var out bytes.Buffer
		err := Decode(context.Background(), &out, bytes.NewReader(p), srcs, DecodeOptions{MaxOutput: max})
		if err == nil && !bytes.Equal(out.Bytes(), nw) {
			t.Fatal("decoded to other bytes")
		}
		return err
	}
	n := uint64(len(nw))
	if err := dec(mk(n, dp, np, uint64(len(expNew))), int64(n)); err != nil {
		t.Fatalf("good patch: %v", err)
	}
	good := mk(n, dp, np, uint64(len(expNew)))
	with := func(f func(p *zpiece)) []zpiece { c := append([]zpiece{}, np...); f(&c[0]); return c }
	notZlib := []zpiece{{off: 0, clen: 64}}
	overlap := []zpiece{dp[0], dp[0]}
	cases := map[string]struct {
		p    []byte
		want string
	}{
		"v1 patch":                {append(append([]byte{}, magicV1...), good[len(magic):]...), "needs format"},
		"dictionary not zlib":     {mk(n, notZlib, np, uint64(len(expNew))), "not zlib"},
		"dictionary overlap":      {mk(n, overlap, np, uint64(len(expNew))), "overlaps"},
		"dictionary past end":     {mk(n, []zpiece{{off: int64(len(old)) - 2, clen: 5}}, np, uint64(len(expNew))), "exceeds"},
		"output stream past end":  {mk(n, dp, with(func(p *zpiece) { p.clen = int64(n) }), uint64(len(expNew))), "passes"},
		"expanded length wrong":   {mk(n, dp, np, uint64(len(expNew))+1), "the streams make it"},
		"inflated length wrong":   {mk(n, dp, with(func(p *zpiece) { p.ilen-- }), uint64(len(expNew))-1), "adiff: entry"},
		"level wrong":             {mk(n, dp, with(func(p *zpiece) { p.level = 9 }), uint64(len(expNew))), "recompresses"},
		"level out of range":      {mk(n, dp, with(func(p *zpiece) { p.level = 10 }), uint64(len(expNew))), "exceeds"},
		"inflates past the bound": {mk(n, dp, with(func(p *zpiece) { p.ilen = maxExpand + 1 }), uint64(len(expNew))), "exceeds"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := dec(c.p, int64(n))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("kind %v: %v", fault.KindOf(err, 0), err)
			}
		})
	}
}

// elfFuzzSource is the source FuzzDecodeELF decodes against, and a new
// version of it.
func elfFuzzSource(t testing.TB) (old, newTar []byte) {
	debug := textData(50, 8<<10)
	code := fakeCode(51, 2048)
	old = mktar(t, []entry{{name: "bin/app", body: fakeELF(t, code, debug, zlib.BestSpeed)}}, nil)
	newTar = mktar(t, []entry{{name: "bin/app", body: fakeELF(t, relink(code, 52, 8), mutate(debug, 53, 4), zlib.BestSpeed)}}, nil)
	return old, newTar
}

// FuzzDecodeELF fuzzes the decoder from patches holding XADIFF (seeds
// also in testdata/fuzz/FuzzDecodeELF).
func FuzzDecodeELF(f *testing.F) {
	old, newTar := elfFuzzSource(f)
	var patch bytes.Buffer
	st, err := Encode(context.Background(), &patch, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{FileByFile: true})
	if err != nil || st.ADiffs != 1 {
		f.Fatalf("seed: %v, stats %+v", err, st)
	}
	f.Add(patch.Bytes())
	f.Fuzz(func(t *testing.T, p []byte) {
		var out bytes.Buffer
		Decode(context.Background(), &out, bytes.NewReader(p), []Source{src(old)}, DecodeOptions{MaxOutput: 1 << 20})
		if out.Len() > 1<<20 {
			t.Fatalf("wrote %d bytes past MaxOutput", out.Len())
		}
	})
}
