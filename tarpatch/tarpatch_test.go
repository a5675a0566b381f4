package tarpatch

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/diffah/diffah/fault"
)

type memSource struct{ *bytes.Reader }

func (m memSource) Size() int64 { return m.Reader.Size() }

func src(b []byte) Source { return memSource{bytes.NewReader(b)} }

type entry struct {
	name   string
	body   []byte
	typ    byte
	link   string
	format tar.Format
}

func mktar(t testing.TB, ents []entry, trailer []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: 0o644, ModTime: time.Unix(1700000000, 0), Format: e.format}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	return append(b.Bytes(), trailer...)
}

func rnd(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func textData(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := strings.Fields("function return const let var import export default module require this that value object array string")
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[rng.Intn(len(words))])
		b.WriteByte(" \n;"[rng.Intn(3)])
	}
	return b.Bytes()[:n]
}

func mutate(b []byte, seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	out := append([]byte{}, b...)
	for i := 0; i < n; i++ {
		at := rng.Intn(len(out))
		if rng.Intn(2) == 0 {
			out = append(out[:at], append(rnd(int64(i), 20), out[at:]...)...)
		} else {
			out[at] ^= 0xff
		}
	}
	return out
}

func roundTrip(t *testing.T, newTar []byte, sources [][]byte, o EncodeOptions) (Stats, []byte) {
	t.Helper()
	var ss []Source
	for _, s := range sources {
		ss = append(ss, src(s))
	}
	var patch bytes.Buffer
	st, err := Encode(context.Background(), &patch, bytes.NewReader(newTar), ss, o)
	if err != nil {
		t.Fatal(err)
	}
	if st.NewSize != int64(len(newTar)) || st.PatchSize != int64(patch.Len()) {
		t.Fatalf("stats %+v for %d-byte tar, %d-byte patch", st, len(newTar), patch.Len())
	}
	var out bytes.Buffer
	if err := Decode(context.Background(), &out, bytes.NewReader(patch.Bytes()), ss, DecodeOptions{MaxOutput: int64(len(newTar))}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), newTar) {
		t.Fatalf("round trip differs: got %d bytes, want %d", out.Len(), len(newTar))
	}
	return st, patch.Bytes()
}

func TestRoundTrips(t *testing.T) {
	bin := rnd(1, 300<<10)
	js := textData(2, 200<<10)
	old := mktar(t, []entry{
		{name: "usr/", typ: tar.TypeDir},
		{name: "usr/bin/app", body: bin},
		{name: "usr/lib/libssl.so.3.0.11", body: mutate(bin, 9, 50)},
		{name: "srv/app.js", body: js},
		{name: "srv/same.txt", body: []byte("unchanged\n")},
		{name: "etc/gone", body: []byte("removed in new")},
	}, nil)
	longName := strings.Repeat("deep/", 40) + "file.txt"
	tests := []struct {
		name    string
		ents    []entry
		trailer []byte
		sources [][]byte
		check   func(t *testing.T, st Stats, patch []byte)
	}{
		{name: "empty tar", ents: nil, sources: [][]byte{old}},
		{name: "no sources", ents: []entry{{name: "a", body: js}}, sources: nil},
		{name: "unchanged and modified", sources: [][]byte{old}, ents: []entry{
			{name: "usr/", typ: tar.TypeDir},
			{name: "usr/bin/app", body: mutate(bin, 3, 10)},
			{name: "usr/lib/libssl.so.3.0.13", body: mutate(bin, 10, 60)},
			{name: "srv/app.js", body: mutate(js, 4, 30)},
			{name: "srv/same.txt", body: []byte("unchanged\n")},
			{name: "srv/moved-same.txt", body: []byte("removed in new")},
			{name: "srv/new.js", body: textData(5, 50<<10)},
			{name: "lnk", typ: tar.TypeSymlink, link: "usr/bin/app"},
			{name: "hard", typ: tar.TypeLink, link: "usr/bin/app"},
			{name: "srv/.wh.old", body: nil},
		}, check: func(t *testing.T, st Stats, patch []byte) {
			if st.Copied < 2 || st.Deltas < 3 {
				t.Errorf("stats %+v: want copies and deltas", st)
			}
			if len(patch) > 40<<10 {
				t.Errorf("patch %d bytes for small edits of ~800 KiB", len(patch))
			}
		}},
		{name: "pax long names", sources: [][]byte{old}, ents: []entry{{name: longName, body: js, format: tar.FormatPAX}}},
		{name: "gnu long names", sources: [][]byte{old}, ents: []entry{{name: longName, body: js, format: tar.FormatGNU}}},
		{name: "trailing junk", sources: [][]byte{old}, ents: []entry{{name: "srv/app.js", body: js}}, trailer: []byte("junk after the end\x00\x01")},
		{name: "record padding", sources: [][]byte{old}, ents: []entry{{name: "x", body: []byte("x")}}, trailer: make([]byte, 9216)},
		{name: "two sources", sources: [][]byte{mktar(t, []entry{{name: "a", body: bin}}, nil), mktar(t, []entry{{name: "b", body: js}}, nil)},
			ents: []entry{{name: "b", body: mutate(js, 7, 5)}, {name: "a", body: bin}}},
		{name: "not a tar", sources: [][]byte{old}, ents: nil, trailer: rnd(8, 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var newTar []byte
			if tt.ents == nil && tt.trailer != nil && tt.name == "not a tar" {
				newTar = tt.trailer
			} else {
				newTar = mktar(t, tt.ents, tt.trailer)
			}
			// The file-by-file codec, then Encode's choice, which for a
			// small layer may be the whole form: never larger.
			st, patch := roundTrip(t, newTar, tt.sources, EncodeOptions{FileByFile: true})
			if tt.check != nil {
				tt.check(t, st, patch)
			}
			if _, best := roundTrip(t, newTar, tt.sources, EncodeOptions{}); len(best) > len(patch) {
				t.Errorf("Encode chose %d bytes over the file-by-file %d", len(best), len(patch))
			}
			// The edit form alone, which Encode tries on small sources.
			editRoundTrip(t, newTar, tt.sources)
		})
	}
}

func TestChunkedLargeFile(t *testing.T) {
	bin := rnd(1, 5<<20)
	old := mktar(t, []entry{{name: "big", body: bin}}, nil)
	newTar := mktar(t, []entry{{name: "big", body: mutate(bin, 2, 20)}}, nil)
	st, patch := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{MaxChunk: 1 << 20, FileByFile: true})
	if st.Deltas < 5 || len(patch) > 64<<10 {
		t.Fatalf("chunked delta: %+v, %d-byte patch", st, len(patch))
	}
}

func TestDeterministicAcrossJobs(t *testing.T) {
	bin := rnd(1, 200<<10)
	var ents, olds []entry
	for i := 0; i < 30; i++ {
		name := "f" + string(rune('a'+i))
		olds = append(olds, entry{name: name, body: bin[i*1000:]})
		ents = append(ents, entry{name: name, body: mutate(bin[i*1000:], int64(i), 3)})
	}
	old, newTar := mktar(t, olds, nil), mktar(t, ents, nil)
	_, p1 := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{Jobs: 1, FileByFile: true})
	_, p4 := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{Jobs: 4, FileByFile: true})
	if !bytes.Equal(p1, p4) {
		t.Fatal("patch depends on Jobs")
	}
}

// TestDecodeErrors runs hostile variants of both forms of a patch: file
// by file, and whole (a small layer against its whole source).
func TestDecodeErrors(t *testing.T) {
	for _, form := range []string{"file-by-file", "whole"} {
		t.Run(form, func(t *testing.T) { testDecodeErrors(t, form == "file-by-file") })
	}
}

// smallEdits is a layer pair with version bumps in a dozen small text
// files (where the whole form wins), an unchanged binary and a new file.
func smallEdits(t testing.TB) (old, newTar []byte) {
	bump := func(b []byte, at int) []byte {
		out := append([]byte{}, b...)
		copy(out[at:], "version 1.2.4")
		return out
	}
	oldEnts := []entry{{name: "b", body: rnd(3, 10000)}}
	newEnts := []entry{{name: "b", body: rnd(3, 10000)}, {name: "c", body: []byte("new")}}
	for i := range 12 {
		js := textData(int64(10+i), 8<<10)
		name := fmt.Sprintf("lib/m%d.js", i)
		oldEnts = append(oldEnts, entry{name: name, body: js})
		newEnts = append(newEnts, entry{name: name, body: bump(js, 100*i)})
	}
	return mktar(t, oldEnts, nil), mktar(t, newEnts, nil)
}

func testDecodeErrors(t *testing.T, fileByFile bool) {
	old, newTar := smallEdits(t)
	var patch bytes.Buffer
	st, err := Encode(context.Background(), &patch, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{FileByFile: fileByFile})
	if err != nil {
		t.Fatal(err)
	}
	if st.Whole == fileByFile {
		t.Fatalf("whole form %v, want %v", st.Whole, !fileByFile)
	}
	p := patch.Bytes()
	dec := func(b []byte, sources []Source, max int64) error {
		var out bytes.Buffer
		return Decode(context.Background(), &out, bytes.NewReader(b), sources, DecodeOptions{MaxOutput: max})
	}
	good := []Source{src(old)}
	if err := dec(p, good, int64(len(newTar))); err != nil {
		t.Fatal(err)
	}
	// Truncated anywhere: an error, never a panic and never success.
	for i := 0; i < len(p); i++ {
		if err := dec(p[:i], good, int64(len(newTar))); err == nil {
			t.Fatalf("truncated at %d of %d: decoded", i, len(p))
		} else if fault.KindOf(err, 0) != fault.Integrity {
			t.Fatalf("truncated at %d: kind %v: %v", i, fault.KindOf(err, 0), err)
		}
	}
	if err := dec(append(append([]byte{}, p...), 0), good, int64(len(newTar))); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if err := dec(p, good, int64(len(newTar))-1); err == nil || !strings.Contains(err.Error(), "exceed") {
		t.Fatalf("MaxOutput: %v", err)
	}
	if err := dec(p, nil, int64(len(newTar))); err == nil {
		t.Fatal("decoded without its source")
	}
	// The whole form is only for small sources: one too large to hold
	// is refused, not read.
	big := memSource{bytes.NewReader(make([]byte, SmallLayer+1))}
	if err := dec(p, []Source{big}, int64(len(newTar))); err == nil {
		t.Fatal("decoded against a source it was not made from")
	} else if !fileByFile && !strings.Contains(err.Error(), "at most") {
		t.Fatalf("whole form against a large source: %v", err)
	}
	// A different source either fails or yields different bytes, which
	// the caller's diffID check catches; it must not panic.
	other := []Source{src(mktar(t, []entry{{name: "a.js", body: textData(9, 100<<10)}}, nil))}
	var out bytes.Buffer
	if err := Decode(context.Background(), &out, bytes.NewReader(p), other, DecodeOptions{MaxOutput: 1 << 30}); err == nil && bytes.Equal(out.Bytes(), newTar) {
		t.Fatal("wrong source produced the right output")
	}
	// Bit flips: error or different output, never a panic.
	for i := len(magic); i < len(p); i += max(1, len(p)/200) {
		b := append([]byte{}, p...)
		b[i] ^= 0x10
		var out bytes.Buffer
		if err := Decode(context.Background(), &out, bytes.NewReader(b), good, DecodeOptions{MaxOutput: int64(len(newTar))}); err == nil && bytes.Equal(out.Bytes(), newTar) && !bytes.Equal(b, p) {
			t.Logf("flip at %d left the output intact (zstd block slack)", i)
		}
	}
	if err := dec([]byte("NOTMAGIC"), good, 10); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Fatalf("bad magic: %v", err)
	}
	if err := dec(p, good, 0); err == nil {
		t.Fatal("no MaxOutput accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Decode(ctx, &out, bytes.NewReader(p), good, DecodeOptions{MaxOutput: 1 << 20}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	old, js := fuzzSource(f)
	newTar := mktar(f, []entry{{name: "a.js", body: mutate(js, 1, 5)}, {name: "c", body: []byte("new")}}, nil)
	var patch bytes.Buffer
	Encode(context.Background(), &patch, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{})
	f.Add(patch.Bytes())
	f.Add(append(append([]byte{}, magic...), 0x28, 0xb5, 0x2f, 0xfd))
	// The bombs, scaled to the fuzz output limit.
	for _, b := range bombs(f, uint64(len(old)), 64<<10) {
		if len(b) < 1<<20 {
			f.Add(b)
		}
	}
	// More seeds (copy, literal, binary delta, empty tar, the whole and
	// edit forms, truncations, the previous formats) are in testdata/fuzz/FuzzDecode, all against the same
	// old tar (TestFuzzSeeds keeps them current).
	f.Fuzz(func(t *testing.T, p []byte) {
		var out bytes.Buffer
		Decode(context.Background(), &out, bytes.NewReader(p), []Source{src(old)}, DecodeOptions{MaxOutput: 1 << 20})
		if out.Len() > 1<<20 {
			t.Fatalf("wrote %d bytes past MaxOutput", out.Len())
		}
	})
}

// TestRepeatedEditPaidOnce: the same new code inserted into two files
// costs about once, because the second file's dictionary starts with the
// first (history), and the result round-trips.
func TestRepeatedEditPaidOnce(t *testing.T) {
	js := textData(20, 600<<10)
	other := append(append([]byte{}, js...), textData(21, 50<<10)...)
	ins := rnd(22, 8<<10) // incompressible new code
	edit := func(b []byte) []byte {
		return append(append(append([]byte{}, b[:300<<10]...), ins...), b[300<<10:]...)
	}
	old := mktar(t, []entry{{name: "lib/a.js", body: js}, {name: "lib/b.js", body: other}}, nil)
	one := mktar(t, []entry{{name: "lib/a.js", body: edit(js)}, {name: "lib/b.js", body: other}}, nil)
	both := mktar(t, []entry{{name: "lib/a.js", body: edit(js)}, {name: "lib/b.js", body: edit(other)}}, nil)
	_, p1 := roundTrip(t, one, [][]byte{old}, EncodeOptions{FileByFile: true})
	_, p2 := roundTrip(t, both, [][]byte{old}, EncodeOptions{FileByFile: true})
	if len(p2) > len(p1)+len(ins)/4 {
		t.Fatalf("edit in two files: %d bytes, in one: %d; the repeat should be nearly free", len(p2), len(p1))
	}
}

// TestSmallEditsCheap: a version bump in a text file costs a few dozen
// bytes file by file (MATCHIN: the streams bare in the shared stream),
// and a layer of many such edits takes the whole form when that is
// smaller; both round-trip.
func TestSmallEditsCheap(t *testing.T) {
	js := textData(30, 100<<10)
	edited := append([]byte{}, js...)
	copy(edited[50<<10:], "version 4.18.2")
	old := mktar(t, []entry{{name: "pkg/index.js", body: js}}, nil)
	newTar := mktar(t, []entry{{name: "pkg/index.js", body: edited}}, nil)
	if _, p := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{FileByFile: true}); len(p) > 120 {
		t.Errorf("one-word edit of a 100 KiB file: %d-byte patch", len(p))
	}

	old, newTar = smallEdits(t)
	_, perFile := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{FileByFile: true})
	st, best := roundTrip(t, newTar, [][]byte{old}, EncodeOptions{})
	if !st.Whole || len(best) >= len(perFile) || !bytes.HasPrefix(best, wholeMagic) {
		t.Errorf("small edits: Encode gave %d bytes (whole %v), file by file %d", len(best), st.Whole, len(perFile))
	}
}
