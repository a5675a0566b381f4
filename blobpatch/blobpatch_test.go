package blobpatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
)

type memSource struct{ *bytes.Reader }

func (m memSource) Size() int64 { return m.Reader.Size() }

func src(b []byte) Source { return memSource{bytes.NewReader(b)} }

func noise(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// edit returns old with a few small changes and an insertion, the shape of
// a compressed layer whose tail was rebuilt.
func edit(old []byte, seed int64) []byte {
	r := rand.New(rand.NewSource(seed))
	out := append([]byte{}, old[:len(old)/3]...)
	out = append(out, noise(seed, 4096)...)
	out = append(out, old[len(old)/3:]...)
	for range 8 {
		out[r.Intn(len(out))] ^= 0xff
	}
	return out
}

func roundTrip(t *testing.T, old, blob []byte) int64 {
	t.Helper()
	var p bytes.Buffer
	n, err := Encode(context.Background(), &p, bytes.NewReader(blob), int64(len(blob)), src(old), EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(p.Len()) {
		t.Fatalf("Encode says %d bytes, wrote %d", n, p.Len())
	}
	var out bytes.Buffer
	if err := Decode(context.Background(), &out, &p, []Source{src(old)}, DecodeOptions{MaxOutput: int64(len(blob))}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), blob) {
		t.Fatalf("decoded %d bytes differ from the %d-byte blob", out.Len(), len(blob))
	}
	return n
}

func TestRoundTrip(t *testing.T) {
	small := noise(1, 300<<10)
	cases := []struct {
		name      string
		old, blob []byte
		// maxRatio bounds patch/blob: a check that the dictionary is used.
		maxRatio float64
	}{
		{"empty blob", small, nil, 10},
		{"empty source", nil, small, 1.01},
		{"identical", small, small, 0.01},
		{"small edit", small, edit(small, 2), 0.05},
		{"unrelated", small, noise(3, 200<<10), 1.01},
		// Larger than one chunk and than the dictionary: chunks patch
		// against the matching region of the source.
		{"multi-chunk edit", noise(4, 20<<20), edit(noise(4, 20<<20), 5), 0.05},
		{"chunk-sized", noise(6, ChunkSize), noise(6, ChunkSize), 0.01},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := roundTrip(t, c.old, c.blob)
			if limit := c.maxRatio*float64(len(c.blob)) + 64; float64(n) > limit {
				t.Fatalf("patch is %d bytes for a %d-byte blob, want at most %.0f", n, len(c.blob), limit)
			}
		})
	}
}

// TestEncodeJobsIndependent: the patch is the same bytes whatever the
// number of workers, on a blob of many chunks (the last one short).
func TestEncodeJobsIndependent(t *testing.T) {
	old := noise(7, 3*ChunkSize+12345)
	blob := edit(noise(7, 3*ChunkSize+12345), 9)
	var want []byte
	for _, jobs := range []int{1, 2, 4} {
		var p bytes.Buffer
		n, err := Encode(context.Background(), &p, bytes.NewReader(blob), int64(len(blob)), src(old), EncodeOptions{Jobs: jobs})
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(p.Len()) {
			t.Fatalf("jobs %d: Encode says %d bytes, wrote %d", jobs, n, p.Len())
		}
		if want == nil {
			want = p.Bytes()
		} else if !bytes.Equal(p.Bytes(), want) {
			t.Fatalf("jobs %d: patch differs from jobs 1 (%d vs %d bytes)", jobs, p.Len(), len(want))
		}
	}
}

func TestEncodeSizeMismatch(t *testing.T) {
	_, err := Encode(context.Background(), &bytes.Buffer{}, bytes.NewReader(make([]byte, 10)), 11, src(nil), EncodeOptions{})
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("got %v, want an integrity error", err)
	}
}

func chunkBytes(si, off, dlen, outLen uint64, payload []byte) []byte {
	b := []byte{tagChunk}
	for _, v := range []uint64{si, off, dlen, outLen, uint64(len(payload))} {
		b = binary.AppendUvarint(b, v)
	}
	return append(b, payload...)
}

func TestDecodeHostile(t *testing.T) {
	old := noise(7, 64<<10)
	var good bytes.Buffer
	if _, err := Encode(context.Background(), &good, bytes.NewReader(edit(old, 8)), int64(len(old)+4096), src(old), EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	g := good.Bytes()
	cases := map[string][]byte{
		"empty":             nil,
		"bad magic":         []byte("DFHTAR1\nxxxx"),
		"no end":            []byte(magic),
		"unknown tag":       append([]byte(magic), 7),
		"trailing data":     append(append([]byte{}, g...), 0),
		"truncated":         g[:len(g)-10],
		"source index":      append(append([]byte(magic), chunkBytes(1, 0, 0, 1, []byte{1})...), tagEnd),
		"dict outside":      append(append([]byte(magic), chunkBytes(0, 60<<10, 8<<10, 1, []byte{1})...), tagEnd),
		"dict offset huge":  append(append([]byte(magic), chunkBytes(0, 1<<62, 1, 1, []byte{1})...), tagEnd),
		"dict too large":    append(append([]byte(magic), chunkBytes(0, 0, MaxDict+1, 1, []byte{1})...), tagEnd),
		"zero chunk":        append(append([]byte(magic), chunkBytes(0, 0, 0, 0, nil)...), tagEnd),
		"chunk too large":   append(append([]byte(magic), chunkBytes(0, 0, 0, MaxChunk+1, []byte{1})...), tagEnd),
		"payload too large": append(append([]byte(magic), chunkBytes(0, 0, 0, 10, make([]byte, 1<<17))...), tagEnd),
		"bad payload":       append(append([]byte(magic), chunkBytes(0, 0, 0, 4, []byte{1, 2, 3, 4})...), tagEnd),
		"varint overflow":   append([]byte(magic), tagChunk, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			err := Decode(context.Background(), &bytes.Buffer{}, bytes.NewReader(p), []Source{src(old)}, DecodeOptions{MaxOutput: 1 << 30})
			if !errors.Is(err, errCorrupt) || fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("got %v, want a corrupt-patch integrity error", err)
			}
		})
	}
	t.Run("output over MaxOutput", func(t *testing.T) {
		err := Decode(context.Background(), &bytes.Buffer{}, bytes.NewReader(g), []Source{src(old)}, DecodeOptions{MaxOutput: int64(len(old))})
		if !errors.Is(err, errCorrupt) {
			t.Fatalf("got %v, want the output bound to refuse", err)
		}
	})
	t.Run("bomb frame", func(t *testing.T) {
		// A frame that decodes to more than its chunk length says.
		enc, err := newEncoder(nil, zstd.SpeedDefault)
		if err != nil {
			t.Fatal(err)
		}
		frame := enc.EncodeAll(make([]byte, 1<<20), nil)
		p := append(append([]byte(magic), chunkBytes(0, 0, 0, 1000, frame)...), tagEnd)
		if err := Decode(context.Background(), &bytes.Buffer{}, bytes.NewReader(p), []Source{src(old)}, DecodeOptions{MaxOutput: 1 << 30}); !errors.Is(err, errCorrupt) {
			t.Fatalf("got %v, want a refusal", err)
		}
	})
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecode from the encoder")

// fuzzSource is the source every fuzz input decodes against.
func fuzzSource() []byte { return noise(9, 8<<10) }

func TestFuzzSeeds(t *testing.T) {
	old := fuzzSource()
	seeds := map[string][]byte{}
	for i, blob := range [][]byte{nil, old, edit(old, 10), noise(11, 2000)} {
		var p bytes.Buffer
		if _, err := Encode(context.Background(), &p, bytes.NewReader(blob), int64(len(blob)), src(old), EncodeOptions{}); err != nil {
			t.Fatal(err)
		}
		seeds[fmt.Sprintf("seed-%d", i)] = p.Bytes()
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	for name, p := range seeds {
		path := filepath.Join(dir, name)
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", p)
		if *updateSeeds {
			os.MkdirAll(dir, 0o755)
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s is stale or missing (go test ./blobpatch -run TestFuzzSeeds -update-seeds)", path)
		}
	}
}

// FuzzDecode: hostile patches never panic, never write past MaxOutput,
// and every refusal is an integrity error.
func FuzzDecode(f *testing.F) {
	old := fuzzSource()
	f.Add([]byte(magic + "\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var out bytes.Buffer
		const max = 64 << 10
		err := Decode(context.Background(), &out, bytes.NewReader(p), []Source{src(old)}, DecodeOptions{MaxOutput: max})
		if out.Len() > max {
			t.Fatalf("wrote %d bytes past the %d-byte bound", out.Len(), max)
		}
		if err != nil && fault.KindOf(err, 0) != fault.Integrity {
			t.Fatalf("non-integrity error on hostile input: %v", err)
		}
	})
}
