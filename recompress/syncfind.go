package recompress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	kgzip "github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/diffah/diffah/deflatetok"
	"github.com/diffah/diffah/fault"
)

// SyncOptions tune FindSyncPoints.
type SyncOptions struct {
	// Jobs is how many segments are compressed at once (default 1).
	Jobs int
	// Segment is the input aimed at between sync points (default
	// DefaultSyncSegment, at least MinSyncSegment).
	Segment int64
}

// DefaultSyncSegment is the input between sync points FindSyncPoints
// aims at: small enough that a few workers stay busy on a 20 MiB layer,
// large enough that the dictionary and margin each segment compresses
// again (48 KiB) cost about 2 %.
const DefaultSyncSegment = 2 << 20

// FindSyncPoints returns r with the sync points of the blob open returns
// (which r reproduces: Detect found it): every block boundary about
// o.Segment apart where a segment compressed on its own comes out bit
// for bit, checked by compressing them all (o.Jobs at a time). A
// boundary whose segment does not is dropped, merging the segments on
// either side, which are checked again. r comes back unchanged when its
// encoder takes no dictionary, when the blob is smaller than two
// segments, or when the segments do not reproduce.
func FindSyncPoints(ctx context.Context, open func() (io.ReadCloser, error), r Recipe, o SyncOptions) (Recipe, error) {
	r, _, err := FindSyncPointsProving(ctx, open, r, o)
	return r, err
}

// FindSyncPointsProving is FindSyncPoints, and also says whether its
// checks prove that r reproduces the whole blob: every segment came out
// bit for bit, the blob's gzip header is the one r writes, and nothing
// follows the member's trailer (whose checksum and size the content's
// reading checked). The segments joined are then the blob, which is what
// resolve's parallel writer builds, so the serial full check Detect runs
// would only do the same compression once more.
func FindSyncPointsProving(ctx context.Context, open func() (io.ReadCloser, error), r Recipe, o SyncOptions) (Recipe, bool, error) {
	if !r.syncable() || len(r.Sync) > 0 {
		return r, false, nil
	}
	if o.Segment < MinSyncSegment {
		o.Segment = DefaultSyncSegment
	}
	o.Jobs = max(o.Jobs, 1)
	// The candidates: the first block boundary at least Segment after
	// the previous one.
	cands := []SyncPoint{{}}
	var lastAligned SyncPoint // the latest aligned block after the last candidate
	rc, err := open()
	if err != nil {
		return r, false, fault.Errorf(fault.Env, "recompress: %w", err)
	}
	m, err := deflatetok.Blocks(ctx, rc, func(b deflatetok.Block) error {
		// Only byte-aligned blocks: a stored block pads to a byte
		// boundary, so a segment shifted by bits would need its padding
		// rewritten (measured: the shifted cuts of a Debian layer failed
		// at its stored blocks). One block in eight starts on a byte.
		if b.Bit%8 != 0 || len(cands) > MaxSyncPoints {
			return ctx.Err()
		}
		p := SyncPoint{In: b.Content, Out: b.Bit / 8}
		if p.In-cands[len(cands)-1].In >= o.Segment {
			cands = append(cands, p)
			lastAligned = SyncPoint{}
		} else if p.In-cands[len(cands)-1].In >= MinSyncSegment {
			lastAligned = p
		}
		return ctx.Err()
	})
	// The last segment compresses as the content arrives, after all the
	// others: a cut near the end keeps that serial part short.
	if lastAligned.In > 0 && len(cands) <= MaxSyncPoints {
		cands = append(cands, lastAligned)
	}
	rc.Close()
	if err != nil {
		if ctx.Err() != nil {
			return r, false, ctx.Err()
		}
		return r, false, fault.Errorf(fault.Integrity, "recompress: finding sync points: %w", err)
	}
	if len(cands) < 2 {
		return r, false, nil
	}
	f := &finder{r: r, open: open, hdr: m.HeaderLen, end: m.End, jobs: o.Jobs}
	// ok[i] says the segment starting at cands[i] reproduced. A failed
	// one loses its start, the previous segment growing over it (the
	// first segment, which cannot lose its start, loses its end), and the
	// grown segments are checked again, a few rounds at most.
	check := make([]bool, len(cands))
	for i := range check {
		check[i] = true
	}
	for round := 0; round < 4; round++ {
		ok, err := f.verify(ctx, cands, check)
		if err != nil {
			return r, false, err
		}
		if syncDebug != nil {
			syncDebug(round, cands, ok, check)
		}
		keep, again, failed := merge(cands, ok)
		if !failed {
			proven, err := f.framed()
			return f.recipe(cands), proven, err
		}
		cands, check = keep, again
		if len(cands) < 2 || !gapsFit(cands) {
			return r, false, nil
		}
	}
	return r, false, nil
}

// merge drops the start of every segment that did not reproduce (ok
// false), so that the segment before grows over it (the first segment,
// whose start is the stream's, loses its end instead), and says which
// of the segments left must be checked again: those that grew.
func merge(cands []SyncPoint, ok []bool) (keep []SyncPoint, again []bool, failed bool) {
	for i := 0; i < len(cands); i++ {
		switch {
		case ok[i]:
			keep, again = append(keep, cands[i]), append(again, false)
		case i == 0:
			keep, again = append(keep, cands[i]), append(again, true)
			failed = true
			i++ // the next cut goes
		default:
			failed = true
			again[len(again)-1] = true
		}
	}
	return keep, again, failed
}

// gapsFit reports whether every segment but the last is within
// MaxSyncSegment.
func gapsFit(ps []SyncPoint) bool {
	for i := 1; i < len(ps); i++ {
		if ps[i].In-ps[i-1].In > MaxSyncSegment {
			return false
		}
	}
	return true
}

type finder struct {
	r    Recipe
	open func() (io.ReadCloser, error)
	hdr  int64
	end  deflatetok.Block
	jobs int
}

// framed reports whether the blob around the deflate stream the
// segments cover is what r writes: its gzip header, and after the
// stream only the 8-byte trailer.
func (f *finder) framed() (bool, error) {
	hdr, err := f.r.gzipHeader()
	if err != nil {
		return false, err
	}
	blob, err := f.open()
	if err != nil {
		return false, fault.Errorf(fault.Env, "recompress: %w", err)
	}
	defer blob.Close()
	head := make([]byte, f.hdr)
	if _, err := io.ReadFull(blob, head); err != nil || !bytes.Equal(head, hdr) {
		return false, nil
	}
	n, err := io.Copy(io.Discard, blob)
	if err != nil {
		return false, fault.Errorf(fault.Env, "recompress: reading the blob: %w", err)
	}
	return n == (f.end.Bit+7)/8+8, nil
}

func (f *finder) recipe(cands []SyncPoint) Recipe {
	r := f.r
	r.Sync = slices.Clone(cands[1:])
	return r
}

// verify compresses the segments that start at cands[i] where check[i]
// and compares each with the blob; it streams the blob and its content
// once, holding about o.Jobs segments.
func (f *finder) verify(ctx context.Context, cands []SyncPoint, check []bool) ([]bool, error) {
	content, err := f.open()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "recompress: %w", err)
	}
	defer content.Close()
	// The content is inflated on the goroutine that hands the segments
	// out, the search's serial part: klauspost's inflater reads it in
	// about 0.6x the time of compress/gzip's (same bytes, same checks).
	zr, err := kgzip.NewReader(bufio.NewReaderSize(content, 1<<20))
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "recompress: %w", err)
	}
	zr.Multistream(false)
	blob, err := f.open()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "recompress: %w", err)
	}
	defer blob.Close()
	in := &slider{r: zr}
	raw := &slider{r: blob}
	// What is not checked again reproduced before.
	ok := make([]bool, len(cands))
	for i := range ok {
		ok[i] = !check[i]
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.jobs)
	for i, p := range cands {
		if !check[i] {
			continue
		}
		if err := gctx.Err(); err != nil {
			break
		}
		last := i == len(cands)-1
		endIn, endOut := f.end.Content, (f.end.Bit+7)/8
		if !last {
			endIn, endOut = cands[i+1].In, cands[i+1].Out
		}
		dictFrom, warmFrom := primeAt(p.In)
		inTo := endIn + syncMargin
		if last {
			inTo = -1
		}
		data, err := in.slice(dictFrom, inTo)
		if err != nil {
			return nil, err
		}
		want, err := raw.slice(f.hdr+p.Out, f.hdr+endOut)
		if err != nil {
			return nil, err
		}
		nextDict, _ := primeAt(endIn)
		in.drop(nextDict)
		raw.drop(f.hdr + endOut)
		g.Go(func() (err error) {
			defer fault.Recover(&err)
			out, err := f.r.segment(data, int(warmFrom-dictFrom), int(p.In-warmFrom), last)
			if err != nil {
				return err
			}
			if last {
				// The closed stream must end where the blob's does.
				ok[i] = bytes.Equal(out, want)
			} else {
				ok[i] = len(out) >= len(want) && bytes.Equal(out[:len(want)], want)
			}
			if !ok[i] && syncMismatch != nil {
				n := 0
				for n < len(out) && n < len(want) && out[n] == want[n] {
					n++
				}
				syncMismatch(i, int64(n), int64(len(want)), int64(len(out)))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return ok, ctx.Err()
}

// slider reads a stream forward, keeping what a caller may still ask
// for.
type slider struct {
	r    io.Reader
	base int64 // offset of buf[0]
	buf  []byte
	eof  bool
}

// slice returns a copy of [from, to) of the stream (to < 0: to its end),
// cut short at the stream's end.
func (s *slider) slice(from, to int64) ([]byte, error) {
	if from < s.base {
		return nil, fault.Errorf(fault.Internal, "recompress: stream offset %d already dropped (at %d)", from, s.base)
	}
	for !s.eof && (to < 0 || s.base+int64(len(s.buf)) < to) {
		if len(s.buf) == cap(s.buf) {
			s.buf = slices.Grow(s.buf, max(1<<20, len(s.buf)))
		}
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if errors.Is(err, io.EOF) {
			s.eof = true
		} else if err != nil {
			return nil, fault.Errorf(fault.Integrity, "recompress: reading the blob: %w", err)
		}
		if to < 0 && int64(len(s.buf)) > MaxSyncSegment*4 {
			return nil, fmt.Errorf("recompress: the last segment is longer than %d bytes", MaxSyncSegment*4)
		}
	}
	end := s.base + int64(len(s.buf))
	if to >= 0 {
		end = min(end, to)
	}
	if from > end {
		from = end
	}
	return slices.Clone(s.buf[from-s.base : end-s.base]), nil
}

// drop forgets the stream before off.
func (s *slider) drop(off int64) {
	if off <= s.base {
		return
	}
	n := min(off-s.base, int64(len(s.buf)))
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	s.base += n
}

// syncDebug, set by tests, sees each round's verdicts.
var syncDebug func(round int, cands []SyncPoint, ok, checked []bool)

var syncMismatch func(i int, firstBad, bits, outBits int64)
