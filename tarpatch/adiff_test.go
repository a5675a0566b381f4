package tarpatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
)

// fakeCode is n bytes shaped like rebuilt machine code: random
// instructions, each 16-byte group carrying a 4-byte address. relink
// inserts a few blocks and moves every address by delta, as a rebuild does.
// (Real x86-64 code has a call, jump or RIP-relative operand every 10-30
// bytes.)
func fakeCode(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	b := make([]byte, n)
	ops := []byte{0x48, 0x89, 0x8b, 0xe8, 0xc3, 0x0f, 0x85, 0x74, 0x00}
	for i := range b {
		b[i] = ops[rng.Intn(len(ops))]
	}
	for i := 0; i+16 <= n; i += 16 {
		binary.LittleEndian.PutUint32(b[i+12:], uint32(rng.Intn(1<<20)))
	}
	return b
}

func relink(b []byte, seed int64, delta uint32) []byte {
	rng := rand.New(rand.NewSource(seed))
	out := append([]byte{}, b...)
	for i := 0; i+16 <= len(out); i += 16 {
		binary.LittleEndian.PutUint32(out[i+12:], binary.LittleEndian.Uint32(out[i+12:])+delta)
	}
	for range 5 {
		at := rng.Intn(len(out)/16) * 16
		out = append(out[:at], append(rnd(seed, 64), out[at:]...)...)
	}
	return out
}

func TestADiffStreams(t *testing.T) {
	old := fakeCode(1, 200<<10)
	cases := map[string][]byte{
		"relinked":  relink(old, 2, 0x40),
		"identical": old,
		"unrelated": rnd(3, 50<<10),
		"empty":     nil,
		"prefix":    old[:1000],
		"shifted":   append(rnd(4, 3), old...),
	}
	for name, nw := range cases {
		t.Run(name, func(t *testing.T) {
			ctrl, diff, extra := adiffStreams(old, nw)
			got, ok := applyADiff(old, ctrl, diff, extra)
			if !ok || !bytes.Equal(got, nw) {
				t.Fatalf("streams rebuild %d bytes (ok %v), want %d", len(got), ok, len(nw))
			}
			if name == "relinked" {
				// Approximate copies: the new file is nearly all diff
				// bytes, most of them zero.
				zeros := bytes.Count(diff, []byte{0})
				if len(diff) < len(nw)*9/10 || zeros < len(diff)*3/4 {
					t.Fatalf("diff %d of %d bytes, %d zero", len(diff), len(nw), zeros)
				}
			}
		})
	}
	if _, _, e := adiffStreams(nil, []byte("abc")); !bytes.Equal(e, []byte("abc")) {
		t.Fatalf("no dictionary: extra %q", e)
	}
}

// TestADiffWinsOnRelinkedCode: a rebuilt binary (addresses moved) costs
// far less with ADIFF than with MATCH/DELTA alone, and round-trips.
func TestADiffWinsOnRelinkedCode(t *testing.T) {
	code := fakeCode(5, 1<<20)
	old := mktar(t, []entry{{name: "usr/bin/app", body: code}}, nil)
	newTar := mktar(t, []entry{{name: "usr/bin/app", body: relink(code, 6, 0x1234)}}, nil)
	o := EncodeOptions{FileByFile: true}
	_, with := roundTrip(t, newTar, [][]byte{old}, o)
	adiffEnabled = false
	_, without := roundTrip(t, newTar, [][]byte{old}, o)
	adiffEnabled = true
	t.Logf("ADIFF %d bytes, without %d", len(with), len(without))
	if len(with) > len(without)*3/4 {
		t.Fatalf("ADIFF patch %d bytes, without %d: no gain", len(with), len(without))
	}
}

// adiffPatch builds a v2 patch holding one ADIFF op over the given raw
// streams, for hostile variants.
func adiffPatch(t *testing.T, ranges []loc, outLen uint64, ctrl, diff, extra []byte, dict []byte) []byte {
	t.Helper()
	enc, err := newEncoders(zstd.SpeedBestCompression)
	if err != nil {
		t.Fatal(err)
	}
	op := appendRanges([]byte{opADiff}, ranges)
	op = binary.AppendUvarint(op, outLen)
	for i, s := range [][]byte{ctrl, diff, extra} {
		var z []byte
		if i == 2 {
			if z, err = enc.withDict(dict, s); err != nil {
				t.Fatal(err)
			}
		} else {
			z = enc.plain.EncodeAll(s, nil)
		}
		op = binary.AppendUvarint(op, uint64(len(z)))
		op = append(op, z...)
	}
	op = append(op, opEnd)
	return append(append([]byte{}, magic...), enc.plain.EncodeAll(op, nil)...)
}

func TestADiffDecodeHostile(t *testing.T) {
	body := fakeCode(7, 64<<10)
	old := mktar(t, []entry{{name: "f", body: body}}, nil)
	srcs := []Source{src(old)}
	whole := []loc{{src: 0, off: 0, size: int64(len(old))}}
	nw := relink(old, 8, 3)
	ctrl, diff, extra := adiffStreams(old, nw)
	dec := func(p []byte, max int64) (string, error) {
		var out bytes.Buffer
		err := Decode(context.Background(), &out, bytes.NewReader(p), srcs, DecodeOptions{MaxOutput: max})
		return out.String(), err
	}
	good := adiffPatch(t, whole, uint64(len(nw)), ctrl, diff, extra, old)
	if out, err := dec(good, int64(len(nw))); err != nil || out != string(nw) {
		t.Fatalf("good patch: %v (%d bytes)", err, len(out))
	}
	entry := func(start int64, ents ...int64) []byte {
		b := binary.AppendVarint(nil, start)
		for i := 0; i < len(ents); i += 3 {
			b = binary.AppendUvarint(b, uint64(ents[i]))
			b = binary.AppendUvarint(b, uint64(ents[i+1]))
			b = binary.AppendVarint(b, ents[i+2])
		}
		return b
	}
	v1 := append(append([]byte{}, magicV1...), good[len(magic):]...)
	cases := map[string]struct {
		p    []byte
		max  int64
		want string
	}{
		"v1 patch with ADIFF":   {v1, int64(len(nw)), "needs format"},
		"output over limit":     {good, int64(len(nw)) - 1, "exceed"},
		"empty entry":           {adiffPatch(t, whole, 4, entry(0, 0, 0, 0, 4, 0, 0), []byte{}, []byte("abcd"), old), 4, "entry of 0+0"},
		"entry past output":     {adiffPatch(t, whole, 4, entry(0, 5, 0, 0), make([]byte, 5), nil, old), 4, "entry of 5+0"},
		"extra past output":     {adiffPatch(t, whole, 4, entry(0, 2, 3, 0), make([]byte, 2), []byte("abc"), old), 4, "entry of 2+3"},
		"copy before dict":      {adiffPatch(t, whole, 4, entry(-1, 4, 0, 0), make([]byte, 4), nil, old), 4, "outside"},
		"copy past dict":        {adiffPatch(t, whole, 4, entry(int64(len(old))-2, 4, 0, 0), make([]byte, 4), nil, old), 4, "outside"},
		"seek past dict":        {adiffPatch(t, whole, 4, entry(0, 2, 0, 1<<30, 2, 0, 0), make([]byte, 4), nil, old), 4, "outside"},
		"diff stream short":     {adiffPatch(t, whole, 4, entry(0, 4, 0, 0), make([]byte, 3), nil, old), 4, "difference stream ends"},
		"extra stream short":    {adiffPatch(t, whole, 4, entry(0, 0, 4, 0), nil, []byte("abc"), old), 4, "extra stream ends"},
		"ctrl short":            {adiffPatch(t, whole, 8, entry(0, 4, 0, 0), make([]byte, 4), nil, old), 8, "control stream ends"},
		"ctrl no start":         {adiffPatch(t, whole, 4, nil, nil, nil, old), 4, "no start"},
		"diff left over":        {adiffPatch(t, whole, 4, entry(0, 4, 0, 0), make([]byte, 5), nil, old), 4, "section 1 has data"},
		"ctrl left over":        {adiffPatch(t, whole, 4, append(entry(0, 4, 0, 0), 1), make([]byte, 4), nil, old), 4, "section 0 has data"},
		"output length too big": {adiffPatch(t, whole, MaxOut+1, entry(0), nil, nil, old), 1 << 40, "exceeds"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := dec(c.p, c.max)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("kind %v: %v", fault.KindOf(err, 0), err)
			}
		})
	}
	// Section lengths together over the fixed cap are refused before
	// anything is allocated for them.
	op := appendRanges([]byte{opADiff}, whole)
	op = binary.AppendUvarint(op, 4)
	op = binary.AppendUvarint(op, maxADiffSections+1)
	enc, _ := newEncoders(zstd.SpeedBestCompression)
	p := append(append([]byte{}, magic...), enc.plain.EncodeAll(op, nil)...)
	if _, err := dec(p, 4); err == nil || !strings.Contains(err.Error(), "adiff section length") {
		t.Fatalf("sections over the cap: %v", err)
	}
}

// TestADiffDeterministicAcrossJobs: patches holding ADIFF and XADIFF ops
// are the same bytes whatever the number of jobs.
func TestADiffDeterministicAcrossJobs(t *testing.T) {
	var olds, news []entry
	for i := range 6 {
		code := fakeCode(int64(70+i), 64<<10)
		name := "usr/lib/lib" + string(rune('a'+i)) + ".so"
		olds = append(olds, entry{name: name, body: code})
		news = append(news, entry{name: name, body: relink(code, int64(80+i), uint32(i+1))})
	}
	debug := textData(90, 100<<10)
	olds = append(olds, entry{name: "usr/bin/app", body: fakeELF(t, fakeCode(91, 32<<10), debug, 1)})
	news = append(news, entry{name: "usr/bin/app", body: fakeELF(t, relink(fakeCode(91, 32<<10), 92, 4), mutate(debug, 93, 5), 1)})
	old, newTar := mktar(t, olds, nil), mktar(t, news, nil)
	st, p1 := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{Jobs: 1, FileByFile: true})
	_, p4 := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{Jobs: 4, FileByFile: true})
	if st.ADiffs < 7 {
		t.Fatalf("stats %+v: want every file as ADIFF or XADIFF", st)
	}
	if !bytes.Equal(p1, p4) {
		t.Fatal("patch depends on Jobs")
	}
}
