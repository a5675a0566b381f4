package tarpatch

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
	pt "github.com/diffah/diffah/tarpatch/patchtest"
)

// Decompression bombs: small patches whose parts claim or decode to far
// more than the decoder's limits. Each must fail as an integrity error
// having allocated less than DecodeMemory (measured with the runtime's
// allocation counter). cmd/diffah's TestHostileBombsMemory runs the same
// kinds through the binary and measures the process's peak RSS.

// bombs are small patches against a source of srcLen bytes, for ops of
// outLen bytes.
func bombs(tb testing.TB, srcLen uint64, outLen uint64) map[string][]byte {
	p := func(window int, ops ...[]byte) []byte { return pt.Patch(tb, window, ops...) }
	delta := func(dict uint64) []byte { return append([]byte{opDelta}, pt.Ranges(srcLen, dict)...) }
	return map[string][]byte{
		// MATCH sections decoding to 10× the output (what the old
		// bound allowed) and 100×.
		"match-sections-10x":  p(1<<20, pt.MatchZeros(tb, outLen, int64(10*outLen+10))),
		"match-sections-100x": p(1<<20, pt.MatchZeros(tb, outLen, int64(100*outLen))),
		// MATCHIN sections claiming 10× the output, bare in the op
		// stream (which compresses them away).
		"matchin-sections-10x": p(1<<20, append(pt.U([]byte{opMatchIn}, 0, outLen, 10*outLen), make([]byte, 10*outLen)...)),
		// A MATCH copy shorter than the encoder ever makes.
		"match-short-copies": p(1<<20, func() []byte {
			b := pt.U(append([]byte{opMatchIn}, pt.Ranges(srcLen, 64)...), 2)
			for _, s := range [][]byte{pt.U(nil, 0, 0), pt.U(nil, 1), binary.AppendVarint(nil, 0)} {
				b = pt.Section(b, s)
			}
			return pt.U(b, 0)
		}()),
		// DELTA with a dictionary, output and payload beyond the limits.
		"delta-dict":    p(1<<20, delta(MaxDict+1)),
		"delta-out":     p(1<<20, pt.U(delta(1024), MaxOut+1)),
		"delta-payload": p(1<<20, pt.U(delta(1024), outLen, 2*outLen+1<<20)),
		// DELTA whose payload decodes past its output length.
		"delta-decodes-past": p(1<<20, pt.Delta(tb, srcLen, 1024, outLen, 0)),
		// An op stream claiming a 256 MiB window.
		"window": p(256<<20, pt.Lit(300<<20)),
	}
}

func TestDecodeBombsBounded(t *testing.T) {
	old, _ := fuzzSource(t)
	for name, p := range bombs(t, uint64(len(old)), MaxOut) {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := Decode(context.Background(), io.Discard, bytes.NewReader(p), []Source{src(old)}, DecodeOptions{MaxOutput: 1 << 40})
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d-byte patch: allocated %d MiB: %v", len(p), alloc>>20, err)
			if err == nil || fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("err = %v, want an integrity error", err)
			}
			if alloc > DecodeMemory {
				t.Fatalf("allocated %d MiB, more than DecodeMemory (%d MiB)", alloc>>20, DecodeMemory>>20)
			}
		})
	}
}

// TestMatchRefusesShortCopies: the decoder holds MATCH to the encoder's
// minimum copy, the premise of the section bounds.
func TestMatchRefusesShortCopies(t *testing.T) {
	old, _ := fuzzSource(t)
	err := Decode(context.Background(), io.Discard, bytes.NewReader(bombs(t, uint64(len(old)), 1<<16)["match-short-copies"]), []Source{src(old)}, DecodeOptions{MaxOutput: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "shorter than the 64") {
		t.Fatalf("err = %v", err)
	}
}

// TestDecodeMemoryCoversLimits keeps DecodeMemory in step with the limits
// it sums.
func TestDecodeMemoryCoversLimits(t *testing.T) {
	if DecodeMemory < streamWindow+HistSize+MaxDict+2*MaxOut {
		t.Fatalf("DecodeMemory %d does not cover the op stream window, history, dictionary and output", DecodeMemory)
	}
	if DecodeMemory > 256<<20 {
		t.Fatalf("DecodeMemory %d MiB: two decodes would not fit the process bound", DecodeMemory>>20)
	}
}
