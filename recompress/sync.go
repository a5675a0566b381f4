package recompress

import (
	"compress/flate"
	"fmt"
	"io"

	kflate "github.com/klauspost/compress/flate"

	"github.com/diffah/diffah/fault"
)

// Sync points: recompressing a layer is one serial deflate, unless the
// stream can be cut where the encoder's state depends only on its last
// window of input. Then each segment between two such points is
// compressed on its own, by an encoder primed with the 32 KiB of input
// before it (a preset dictionary), and the segments' bit streams are
// joined; deflate blocks are not byte-aligned, so a segment is shifted
// to where the previous one ended.
//
// A sync point is a block boundary of the target blob where that
// reproduces the blob: FindSyncPoints compresses every segment at plan
// time and keeps only boundaries whose segments come out bit for bit,
// so a recipe never claims a cut it has not seen work. A segment is
// compressed from syncDict bytes before its start to syncMargin bytes
// past its end (the encoder's lookahead decides the last tokens before
// the cut), flushed, and cut at the next point's bit offset; the last
// segment, from the last point to the end, is closed and cut at
// SyncEnd.
//
// Which encoders this works for, and why: compress/flate at levels 2–9
// keeps, between blocks, its window, its hash chains and no pending
// match (a block ends after a match or with a literal whose next match
// is searched afresh), and NewWriterDict rebuilds the window and the
// chains from a dictionary, except for the dictionary's last three
// positions (their hashes need bytes after it) and for the window's
// phase (whether a block's bytes are still in the window to be stored),
// which is why each cut is verified. Level 1 (BestSpeed) ignores a
// dictionary (compress/flate's fillWindow returns for levels below 2),
// so its blobs get no sync points; HuffmanOnly has no history at all but
// cuts its blocks where writes end, which a replay cannot know. The
// klauspost encoders prime from a dictionary by encoding it; their cuts
// are kept where verification says so. pgzip blobs are independent
// blocks already; zstd is not cut.
const (
	// syncDict is the preset dictionary: deflate's window.
	syncDict = 32 << 10
	// syncMargin is the input given past a segment's end: more than the
	// longest match plus the lazy matcher's one step of lookahead.
	syncMargin = 16 << 10
	// MinSyncSegment and MaxSyncSegment bound the input between two sync
	// points (and before the first): a resolver holds a few segments in
	// memory per worker, so a recipe from untrusted media cannot make it
	// hold more than that.
	MinSyncSegment = 256 << 10
	MaxSyncSegment = 16 << 20
	// MaxSyncPoints bounds a recipe's sync points (a 256 GiB layer at
	// MaxSyncSegment).
	MaxSyncPoints = 1 << 14
)

// SyncPoint is a place where the recipe's deflate stream may be cut: In
// uncompressed bytes and Out bytes of deflate data (after the gzip
// header) come before it.
type SyncPoint struct {
	In  int64 `json:"in"`
	Out int64 `json:"out"`
}

// syncable says whether the recipe's encoder can be primed with a
// dictionary at all.
func (r Recipe) syncable() bool {
	if r.Format != FormatGzip {
		return false
	}
	switch r.Impl {
	case ImplGo:
		return r.Level >= 2 && r.Level <= 9
	case ImplKlauspost:
		return r.Level >= 1 && r.Level <= 9
	}
	return false
}

// validateSync checks sync points from untrusted media: increasing, with
// segments within [MinSyncSegment, MaxSyncSegment] of input and a bit
// length a deflate encoder can produce for them, on a recipe whose
// encoder takes a dictionary.
func (r Recipe) validateSync() error {
	if len(r.Sync) == 0 {
		return nil
	}
	bad := func(format string, a ...any) error {
		return fault.Errorf(fault.Integrity, "recipe %s: sync points: %s", r, fmt.Sprintf(format, a...))
	}
	if !r.syncable() {
		return bad("not supported for this encoder")
	}
	if len(r.Sync) > MaxSyncPoints {
		return bad("%d, more than %d", len(r.Sync), MaxSyncPoints)
	}
	prev := SyncPoint{}
	for i, p := range r.Sync {
		gap, out := p.In-prev.In, p.Out-prev.Out
		if gap < MinSyncSegment || gap > MaxSyncSegment {
			return bad("point %d: %d bytes after the previous one, outside [%d, %d]", i, gap, MinSyncSegment, MaxSyncSegment)
		}
		if out <= 0 || out > maxSegmentOut(gap) {
			return bad("point %d: %d bytes of deflate data for %d bytes", i, out, gap)
		}
		prev = p
	}
	return nil
}

// maxSegmentOut bounds the deflate bytes of n input bytes: stored
// blocks, the largest form, cost 5 bytes per 65535 (the slack covers
// Huffman blocks of a few bytes).
func maxSegmentOut(n int64) int64 { return n + 5*(n/65535+1) + 1<<10 }

// maxSyncGap returns the largest segment the recipe has between sync
// points (0 without any).
func (r Recipe) maxSyncGap() int64 {
	var m, prev int64
	for _, p := range r.Sync {
		m = max(m, p.In-prev)
		prev = p.In
	}
	return m
}

// flateWriter is a raw deflate encoder.
type flateWriter interface {
	io.WriteCloser
	Flush() error
}

// newFlate returns the recipe's raw deflate encoder primed with dict
// (empty: a fresh one).
func (r Recipe) newFlate(w io.Writer, dict []byte) (flateWriter, error) {
	var (
		fw  flateWriter
		err error
	)
	switch r.Impl {
	case ImplGo:
		fw, err = flate.NewWriterDict(w, r.Level, dict)
	case ImplKlauspost:
		fw, err = kflate.NewWriterDict(w, r.Level, dict)
	default:
		err = fmt.Errorf("no raw deflate encoder for %s", r.Impl)
	}
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "recipe %s: %w", r, err)
	}
	return fw, nil
}

// primeAt says where the compression of a segment starting at p
// begins: a dictionary from dictFrom, then a warm-up from warmFrom to p,
// compressed and flushed, whose output is dropped. The warm-up puts the
// encoder's window where the serial encoder's is: compress/flate slides
// its window by 32 KiB when it fills, so the serial encoder's window
// starts at a multiple of 32 KiB, and a block's bytes can still be
// stored only while they are in the window. With the window elsewhere, a
// block of incompressible data is stored by one encoder and Huffman-coded
// by the other (measured: most cuts of a Debian layer failed without it).
func primeAt(p int64) (dictFrom, warmFrom int64) {
	warmFrom = max((p-syncDict)/syncDict*syncDict, 0)
	return max(warmFrom-syncDict, 0), warmFrom
}

// segment compresses one segment. in holds its dictionary (dict
// bytes), its warm-up (warm bytes), the segment and, unless last, up to
// syncMargin bytes of lookahead after it. It returns the encoder's
// output from the segment's first bit: flushed (the caller cuts it at
// the next sync point), or closed when last.
func (r Recipe) segment(in []byte, dict, warm int, last bool) ([]byte, error) {
	var out growBuffer
	fw, err := r.newFlate(&out, in[:dict])
	if err != nil {
		return nil, err
	}
	fail := func(err error) ([]byte, error) {
		return nil, fault.Errorf(fault.Internal, "recipe %s: compressing a segment: %w", r, err)
	}
	start := 0
	if warm > 0 {
		if _, err := fw.Write(in[dict : dict+warm]); err != nil {
			return fail(err)
		}
		if err := fw.Flush(); err != nil {
			return fail(err)
		}
		start = len(out.b)
	}
	if _, err := fw.Write(in[dict+warm:]); err != nil {
		return fail(err)
	}
	if last {
		err = fw.Close()
	} else {
		err = fw.Flush()
	}
	if err != nil {
		return fail(err)
	}
	return out.b[start:], nil
}

type growBuffer struct{ b []byte }

func (g *growBuffer) Write(p []byte) (int, error) {
	g.b = append(g.b, p...)
	return len(p), nil
}

// maxRecipeJSON bounds a recipe's JSON: MaxSyncPoints points of two
// 1 TiB-sized numbers, with room for the rest.
const maxRecipeJSON = MaxSyncPoints*48 + 1<<17
