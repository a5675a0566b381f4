package recompress

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/diffah/diffah/fault"
)

// ErrSyncMismatch says a segment compressed on its own did not come out
// as the recipe's sync points say; the blob can still be rebuilt by the
// serial writer (NewWriter).
var ErrSyncMismatch = errors.New("a segment between sync points did not reproduce")

// SegmentMemory is about the most one segment in flight holds in
// NewParallelWriter: its input (the segment, dictionary, warm-up and
// margin) twice over (input and output) and an encoder. It is the
// per-worker part of ParallelMemory.
func (r Recipe) SegmentMemory() int64 {
	return 2*(r.maxSyncGap()+2*syncDict+syncMargin) + r.WriterMemory()
}

// tailBuffer bounds the last segment's output waiting for the segments
// before it: tailChunks chunks of tailChunk bytes.
const (
	tailChunk  = 1 << 20
	tailChunks = 4
)

// ParallelMemory is about the most NewParallelWriter's writer holds with
// workers workers: workers+1 segments in flight and the last segment's
// encoder and buffered output. Without sync points, or with fewer than
// two workers, it is WriterMemory.
func (r Recipe) ParallelMemory(workers int) int64 {
	if workers < 2 {
		return r.WriterMemory()
	}
	return r.SegmentWriterMemory(workers)
}

// SegmentWriterMemory is ParallelMemory for NewSegmentWriter, which holds
// segments with one worker too (two in flight: the one compressing and
// the next one's input). Without sync points it is WriterMemory.
func (r Recipe) SegmentWriterMemory(workers int) int64 {
	if len(r.Sync) == 0 {
		return r.WriterMemory()
	}
	return int64(max(workers, 1)+1)*r.SegmentMemory() + r.WriterMemory() + (tailChunks+2)*tailChunk
}

// NewParallelWriter is NewWriter compressing the segments between the
// recipe's sync points on up to workers goroutines at once, while the
// caller goes on writing: the output is the same bytes whatever workers
// says. Without sync points, or with fewer than two workers, it is
// NewWriter. Writes block while workers+1 segments are in flight, so
// memory stays within ParallelMemory. A segment that does not reproduce
// (its output does not reach its sync point) fails the write with
// ErrSyncMismatch; that the joined blob is the right one, the caller
// checks against its digest, as with NewWriter.
func (r Recipe) NewParallelWriter(w io.Writer, workers int) (io.WriteCloser, error) {
	if workers < 2 {
		return r.NewWriter(w)
	}
	return r.NewSegmentWriter(w, workers)
}

// NewSegmentWriter is NewParallelWriter building the blob from the
// segments between sync points even with one worker: the construction
// plan checked segment by segment (FindSyncPointsProving), for a blob
// the serial writer might not give. Without sync points it is NewWriter.
func (r Recipe) NewSegmentWriter(w io.Writer, workers int) (io.WriteCloser, error) {
	workers = max(workers, 1)
	if len(r.Sync) == 0 {
		return r.NewWriter(w)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	hdr, err := r.gzipHeader()
	if err != nil {
		return nil, err
	}
	p := &parallelWriter{r: r, crc: crc32.NewIEEE(), order: make(chan *pending, workers), sem: make(chan struct{}, workers), joined: make(chan struct{})}
	p.out = w
	go p.join()
	p.emit(hdr)
	return p, nil
}

// gzipHeader is the header the recipe's gzip writer writes: what it
// writes when flushed at once, less the empty stored block of the flush.
func (r Recipe) gzipHeader() ([]byte, error) {
	var b bytes.Buffer
	zw, err := r.NewWriter(&b)
	if err != nil {
		return nil, err
	}
	type flusher interface{ Flush() error }
	f, ok := zw.(flusher)
	if !ok {
		return nil, fault.Errorf(fault.Internal, "recipe %s: no gzip writer", r)
	}
	if err := f.Flush(); err != nil {
		return nil, fault.Errorf(fault.Internal, "recipe %s: %w", r, err)
	}
	sync := []byte{0, 0, 0, 0xff, 0xff}
	if !bytes.HasSuffix(b.Bytes(), sync) {
		return nil, fault.Errorf(fault.Internal, "recipe %s: unexpected flush of an empty stream % x", r, b.Bytes())
	}
	return b.Bytes()[:b.Len()-len(sync)], nil
}

// pending is a segment in flight: its output when done.
type pending struct {
	done chan struct{}
	out  []byte
	want int64 // bytes of it that belong to the blob; -1: the tail
	err  error
	tail chan []byte // the last segment's output, streamed
}

type parallelWriter struct {
	r   Recipe
	out io.Writer
	crc interface {
		io.Writer
		Sum32() uint32
	}
	size int64

	// Content not yet handed to a segment, from base on.
	buf  []byte
	base int64
	// next is the segment to start: segment i runs from start(i) to
	// Sync[i].In, the last (i == len(Sync)) to the end.
	next int

	// The last segment, once started, compresses in the caller's
	// goroutine as content arrives.
	tail     flateWriter
	tailBuf  *bufio.Writer
	tailPend *pending

	order  chan *pending // in output order, for join
	sem    chan struct{} // workers at once
	joined chan struct{} // join is done
	// Set by join (read after joined is closed, or racily as a hint).
	joinErr error
	closed  bool
	err     error
}

func (p *parallelWriter) start(i int) int64 {
	if i == 0 {
		return 0
	}
	return p.r.Sync[i-1].In
}

// emit queues bytes that are ready (the header).
func (p *parallelWriter) emit(b []byte) {
	pd := &pending{done: make(chan struct{}), out: b, want: int64(len(b))}
	close(pd.done)
	p.order <- pd
}

// join writes the segments' output in order.
func (p *parallelWriter) join() {
	defer close(p.joined)
	var err error
	for pd := range p.order {
		<-pd.done
		if err == nil {
			err = pd.err
		}
		if pd.tail != nil {
			for b := range pd.tail {
				if err == nil {
					_, err = p.out.Write(b)
				}
			}
			continue
		}
		if err == nil && int64(len(pd.out)) < pd.want {
			err = fault.Errorf(fault.Integrity, "recipe %s: %w (%d bytes of output, the sync point is at %d)", p.r, ErrSyncMismatch, len(pd.out), pd.want)
		}
		if err == nil {
			_, err = p.out.Write(pd.out[:pd.want])
		}
		pd.out = nil
	}
	p.joinErr = err
}

func (p *parallelWriter) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.closed {
		return 0, fault.Errorf(fault.Internal, "recompress: write after close")
	}
	p.crc.Write(b)
	p.size += int64(len(b))
	if p.tail != nil {
		if _, err := p.tail.Write(b); err != nil {
			p.err = err
			return 0, err
		}
		return len(b), nil
	}
	p.buf = append(p.buf, b...)
	if err := p.dispatch(false); err != nil {
		p.err = err
		return 0, err
	}
	return len(b), nil
}

// dispatch starts every segment whose input (margin included) has
// arrived, all of them at the end, and the last segment once the one
// before it has started.
func (p *parallelWriter) dispatch(end bool) error {
	avail := p.base + int64(len(p.buf))
	for p.next < len(p.r.Sync) {
		s, e := p.start(p.next), p.r.Sync[p.next].In
		if avail < e+syncMargin && !end {
			return nil
		}
		if avail < e {
			return fault.Errorf(fault.Integrity, "recipe %s: the content ends at %d, before sync point %d at %d", p.r, avail, p.next, e)
		}
		dictFrom, warmFrom := primeAt(s)
		in := bytes.Clone(p.buf[dictFrom-p.base : min(e+syncMargin, avail)-p.base])
		want := p.r.Sync[p.next].Out - p.outAt(p.next)
		p.drop(e)
		p.next++
		pd := &pending{done: make(chan struct{}), want: want}
		p.sem <- struct{}{}
		p.order <- pd
		go func() {
			defer func() { <-p.sem; close(pd.done) }()
			defer fault.Recover(&pd.err)
			pd.out, pd.err = p.r.segment(in, int(warmFrom-dictFrom), int(s-warmFrom), false)
		}()
	}
	return p.startTail()
}

// outAt is where segment i's output starts in the deflate data.
func (p *parallelWriter) outAt(i int) int64 {
	if i == 0 {
		return 0
	}
	return p.r.Sync[i-1].Out
}

// drop forgets content no later segment needs: what is before the
// dictionary of the segment starting at e.
func (p *parallelWriter) drop(e int64) {
	dictFrom, _ := primeAt(e)
	if n := dictFrom - p.base; n > 0 {
		p.buf = p.buf[:copy(p.buf, p.buf[n:])]
		p.base = dictFrom
	}
}

// startTail starts the last segment: its encoder, primed, takes the
// content from its start on; its output streams to join.
func (p *parallelWriter) startTail() error {
	if p.tail != nil {
		return nil
	}
	s := p.start(p.next)
	dictFrom, warmFrom := primeAt(s)
	pd := &pending{done: make(chan struct{}), want: -1, tail: make(chan []byte, tailChunks)}
	close(pd.done)
	sink := &switchWriter{}
	fw, err := p.r.newFlate(sink, p.buf[dictFrom-p.base:warmFrom-p.base])
	if err != nil {
		return err
	}
	if _, err := fw.Write(p.buf[warmFrom-p.base : s-p.base]); err != nil {
		return err
	}
	if err := fw.Flush(); err != nil {
		return err
	}
	p.tailBuf = bufio.NewWriterSize(chanWriter(pd.tail), tailChunk)
	sink.w = p.tailBuf
	p.tail, p.tailPend = fw, pd
	p.order <- pd
	rest := p.buf[s-p.base:]
	p.buf, p.base = nil, p.base+int64(len(p.buf))
	if _, err := fw.Write(rest); err != nil {
		return err
	}
	return nil
}

// switchWriter drops what is written until w is set.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(b []byte) (int, error) {
	if s.w == nil {
		return len(b), nil
	}
	return s.w.Write(b)
}

// chanWriter sends copies of what is written.
type chanWriter chan []byte

func (c chanWriter) Write(b []byte) (int, error) {
	c <- bytes.Clone(b)
	return len(b), nil
}

func (p *parallelWriter) Close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	err := p.err
	if err == nil {
		err = p.dispatch(true)
	}
	if err == nil {
		err = p.tail.Close()
	}
	if err == nil {
		err = p.tailBuf.Flush()
	}
	if p.tailPend != nil {
		close(p.tailPend.tail)
	}
	if err == nil {
		var tr [8]byte
		binary.LittleEndian.PutUint32(tr[:4], p.crc.Sum32())
		binary.LittleEndian.PutUint32(tr[4:], uint32(p.size))
		p.emit(tr[:])
	}
	close(p.order)
	<-p.joined
	if err == nil {
		err = p.joinErr
	}
	if err != nil && p.err == nil {
		p.err = err
	}
	if err != nil {
		return fmt.Errorf("recompress: %w", err)
	}
	return nil
}
