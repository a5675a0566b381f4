// Package blobpatch is diffah's floor codec: a patch of a layer's
// compressed bytes against a baseline layer's compressed bytes. It needs
// no knowledge of the compressor, so it rebuilds any blob — gzip from any
// tool, zstd from the CLI, anything — byte for byte, and it is what a
// layer whose compressor cannot be replayed (recompress.Detect finds no
// recipe) travels as. It is the approach of upstream diffah: zstd with the
// old blob as a raw dictionary ("patch-from").
//
// A blob is cut into chunks of at most ChunkSize bytes; each chunk is one
// zstd frame compressed against the matching region of the source blob
// (its proportional position, widened to DictSize), so memory stays
// bounded by a chunk and its dictionary whatever the blob size.
//
// # Format (Codec "diffah-blob/1")
//
//	patch = magic "DFHBLOB1" { chunk } END
//	chunk = 0x01 uvarint(src) uvarint(off) uvarint(dictLen)
//	        uvarint(outLen) uvarint(encLen) encLen*byte
//	END   = 0x00
//
// src indexes the sources (baseline blobs, compressed bytes); the chunk's
// dictionary is source[off:off+dictLen] (dictLen may be 0); the payload is
// one zstd frame that decodes against it to exactly outLen bytes
// (1 ≤ outLen ≤ MaxChunk). Nothing may follow END. The decoder refuses
// ranges outside a source, dictionaries over MaxDict, outputs over
// DecodeOptions.MaxOutput, unknown tags and trailing data, and never
// panics on hostile input; that the output is the blob the caller expects
// the caller checks against the blob's digest.
package blobpatch

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/membudget"
	"github.com/diffah/diffah/sidecar"
)

// Codec names the format in plans and sidecars (the sidecar package,
// which sits below the codecs, holds the name).
const Codec = sidecar.BlobPatchCodec

const magic = "DFHBLOB1"

// Limits of the format.
const (
	// ChunkSize is the output size of every chunk the encoder writes but
	// the last.
	ChunkSize = 4 << 20
	// DictSize is the dictionary the encoder gives a chunk.
	DictSize = 12 << 20
	// MaxChunk and MaxDict bound what the decoder accepts.
	MaxChunk = 16 << 20
	MaxDict  = 48 << 20
	// window is the zstd window of every frame: dictionary and chunk.
	window    = 16 << 20
	maxWindow = 64 << 20
)

const (
	tagEnd   = 0x00
	tagChunk = 0x01
)

// dictID is the id both sides give raw dictionaries; raw dictionaries
// carry no id check.
const dictID = 1

// Source is a baseline blob (its compressed bytes) with random access.
type Source interface {
	io.ReaderAt
	Size() int64
}

// EncodeOptions tune Encode.
type EncodeOptions struct {
	// Level is the zstd level (default SpeedBestCompression: the lower
	// levels of klauspost zstd do not reach far into a large dictionary).
	Level zstd.EncoderLevel
	// Jobs is how many chunks are compressed at once (default 1). Each
	// holds about WorkerMemory; the patch does not depend on it.
	Jobs int
	// Workers, when set, is a memory budget shared with other encoders
	// running beside this one: a worker holds as many bytes of it as its
	// chunk and dictionary have while it compresses them (see
	// tarpatch.EncodeOptions.Workers). The patch does not depend on it.
	Workers *membudget.Budget
}

// WorkerMemory is about what one Encode worker holds at its peak: a
// chunk, its dictionary, and its zstd encoder at the best level with its
// window and match tables (measured by TestBoundedMemory, rounded up).
const WorkerMemory = 192 << 20

// chunkTask is one chunk: read in order, compressed by a worker, written
// in order. Its buffers are recycled from task to task (see Encode).
type chunkTask struct {
	data, dict []byte
	dOff       int64
	done       chan struct{}
	hdr, enc   []byte
	err        error
}

// Encode writes to w a patch that rebuilds blob (size bytes) from src and
// returns the patch size. The blob is read once, in order; chunks are
// compressed on o.Jobs workers and written in order, so the patch does not depend on o.Jobs and memory is bounded by
// about o.Jobs × WorkerMemory whatever the blob size.
func Encode(ctx context.Context, w io.Writer, blob io.Reader, size int64, src Source, o EncodeOptions) (int64, error) {
	if o.Level == 0 {
		o.Level = zstd.SpeedBestCompression
	}
	o.Jobs = max(o.Jobs, 1)
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString(magic)
	written := int64(len(magic)) + 1 // and the end marker
	// queue holds the tasks in output order. There are o.Jobs+1 tasks,
	// recycled through free once written: their buffers are all the
	// chunks and dictionaries in memory, and nothing is left for the
	// collector to pile up.
	queue := make(chan *chunkTask, o.Jobs+1)
	free := make(chan *chunkTask, o.Jobs+1)
	for range o.Jobs + 1 {
		free <- &chunkTask{}
	}
	// encode compresses one chunk against its dictionary, on a worker.
	encode := func(t *chunkTask) {
		defer close(t.done)
		defer o.Workers.Take(int64(len(t.data)+len(t.dict)) + encoderTables(o.Level))()
		defer fault.Recover(&t.err)
		enc, err := newEncoder(t.dict, o.Level)
		if err != nil {
			t.err = err
			return
		}
		t.enc = enc.EncodeAll(t.data, t.enc[:0])
		enc.Close()
		// Each chunk's encoder (tables sized to its window) is
		// garbage now; collecting it here keeps the peak at one
		// encoder per worker instead of what the collector's
		// pacing lets pile up (measured: 290 MiB without, see
		// TestBoundedMemory). An encoder kept and reset for the
		// next chunk was measured to hold more.
		runtime.GC()
		t.hdr = append(t.hdr[:0], tagChunk)
		for _, v := range []uint64{0, uint64(t.dOff), uint64(len(t.dict)), uint64(len(t.data)), uint64(len(t.enc))} {
			t.hdr = binary.AppendUvarint(t.hdr, v)
		}
	}
	var g errgroup.Group
	g.SetLimit(o.Jobs)
	writeErr := make(chan error, 1)
	go func() {
		var werr error
		for t := range queue {
			<-t.done
			if werr == nil {
				werr = t.err
			}
			if werr == nil {
				bw.Write(t.hdr)
				bw.Write(t.enc)
				written += int64(len(t.hdr) + len(t.enc))
			}
			free <- t
		}
		writeErr <- werr
	}()
	readErr := readChunks(ctx, blob, size, src, free, func(t *chunkTask) {
		queue <- t
		g.Go(func() error { encode(t); return nil })
	})
	close(queue)
	werr := <-writeErr
	g.Wait()
	if readErr != nil {
		return 0, readErr
	}
	if werr != nil {
		return 0, werr
	}
	bw.WriteByte(tagEnd)
	if err := bw.Flush(); err != nil {
		return 0, fault.Errorf(fault.Env, "blobpatch: writing the patch: %w", err)
	}
	return written, nil
}

// readChunks cuts the blob into chunks with their dictionaries, each in a
// task taken from free, and hands each to submit, in order.
func readChunks(ctx context.Context, blob io.Reader, size int64, src Source, free chan *chunkTask, submit func(*chunkTask)) error {
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := <-free
		if t.data == nil {
			t.data = make([]byte, ChunkSize)
		}
		n, err := io.ReadFull(blob, t.data[:ChunkSize])
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return fault.Errorf(fault.Env, "blobpatch: reading the blob: %w", err)
		}
		dOff, dLen := region(src.Size(), off, int64(n), size)
		if int64(cap(t.dict)) < dLen {
			t.dict = make([]byte, dLen)
		}
		t.dict = t.dict[:dLen]
		if _, err := src.ReadAt(t.dict, dOff); err != nil && !(err == io.EOF && int64(len(t.dict)) == dLen) {
			return fault.Errorf(fault.Env, "blobpatch: reading the source blob: %w", err)
		}
		t.data, t.dOff, t.err, t.done = t.data[:n], dOff, nil, make(chan struct{})
		submit(t)
		off += int64(n)
		if err == io.ErrUnexpectedEOF {
			break
		}
	}
	if off != size {
		return fault.Errorf(fault.Integrity, "blobpatch: the blob has %d bytes, expected %d", off, size)
	}
	return nil
}

// region picks the dictionary of the chunk at off (n bytes) of a blob of
// newSize bytes: the whole source when it fits, else DictSize bytes
// around the chunk's proportional position in the source.
func region(srcSize, off, n, newSize int64) (int64, int64) {
	if srcSize <= DictSize {
		return 0, srcSize
	}
	mid := srcSize * (off + n/2) / max(newSize, 1)
	lo := max(0, mid-DictSize/2)
	hi := min(srcSize, lo+DictSize)
	lo = max(0, hi-DictSize)
	return lo, hi - lo
}

// encoderTables is what the encoder of a chunk holds at level besides
// its input and window (see membudget.BestTables).
func encoderTables(level zstd.EncoderLevel) int64 {
	if level >= zstd.SpeedBestCompression {
		return membudget.BestTables
	}
	return 0
}

// newEncoder returns an encoder for one chunk against dict.
func newEncoder(dict []byte, level zstd.EncoderLevel) (*zstd.Encoder, error) {
	opts := []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true),
		zstd.WithWindowSize(window), zstd.WithSingleSegment(false)}
	if len(dict) > 0 {
		opts = append(opts, zstd.WithEncoderDictRaw(dictID, dict))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fault.Errorf(fault.Internal, "blobpatch: encoder: %w", err)
	}
	return enc, nil
}

// DecodeOptions tune Decode.
type DecodeOptions struct {
	// MaxOutput bounds the output (the blob size the sidecar promises).
	MaxOutput int64
}

// Decode applies patch to sources, writing the rebuilt blob to w. Every
// length is checked before it is used; errors on malformed input are
// integrity faults.
func Decode(ctx context.Context, w io.Writer, patch io.Reader, sources []Source, o DecodeOptions) error {
	br := bufio.NewReaderSize(patch, 1<<20)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != magic {
		return corrupt("not a %s patch (bad magic)", Codec)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return fault.Errorf(fault.Internal, "blobpatch: decoder: %w", err)
	}
	defer dec.Close()
	var (
		total int64
		dict  []byte
		enc   []byte
		out   []byte
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		tag, err := br.ReadByte()
		if err != nil {
			return corrupt("truncated: no end marker")
		}
		if tag == tagEnd {
			if _, err := br.ReadByte(); err != io.EOF {
				return corrupt("data after the end marker")
			}
			return nil
		}
		if tag != tagChunk {
			return corrupt("unknown tag 0x%02x", tag)
		}
		var v [5]uint64
		names := [5]string{"source index", "dictionary offset", "dictionary length", "chunk length", "payload length"}
		for i := range v {
			if v[i], err = binary.ReadUvarint(br); err != nil {
				return corrupt("chunk %s: %v", names[i], err)
			}
		}
		si, doff, dlen, outLen, encLen := v[0], v[1], v[2], v[3], v[4]
		if si >= uint64(len(sources)) {
			return corrupt("chunk names source %d of %d", si, len(sources))
		}
		src := sources[si]
		if dlen > MaxDict || doff > uint64(src.Size()) || dlen > uint64(src.Size())-doff {
			return corrupt("dictionary %d+%d outside source %d (%d bytes) or over %d bytes", doff, dlen, si, src.Size(), MaxDict)
		}
		if outLen == 0 || outLen > MaxChunk {
			return corrupt("chunk length %d (1 to %d allowed)", outLen, MaxChunk)
		}
		if outLen > uint64(o.MaxOutput-total) {
			return corrupt("output grows past the expected %d bytes", o.MaxOutput)
		}
		if encLen > outLen+outLen/8+1<<16 {
			return corrupt("payload length %d for a %d-byte chunk", encLen, outLen)
		}
		enc = grow(enc, int(encLen))
		if _, err := io.ReadFull(br, enc); err != nil {
			return corrupt("truncated chunk payload")
		}
		dict = grow(dict, int(dlen))
		if _, err := src.ReadAt(dict, int64(doff)); err != nil && !(err == io.EOF && len(dict) == int(dlen)) {
			return fault.Errorf(fault.Env, "blobpatch: reading source %d: %w", si, err)
		}
		d := dec
		if len(dict) > 0 {
			if d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow),
				zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderDictRaw(dictID, dict)); err != nil {
				return fault.Errorf(fault.Internal, "blobpatch: decoder: %w", err)
			}
		}
		if cap(out) < int(outLen) {
			out = make([]byte, 0, outLen)
		}
		got, err := d.DecodeAll(enc, out[:0:outLen])
		if d != dec {
			d.Close()
			runtime.GC() // as in Encode
		}
		if err != nil {
			return corrupt("chunk payload: %v", err)
		}
		if uint64(len(got)) != outLen {
			return corrupt("chunk decoded to %d bytes, expected %d", len(got), outLen)
		}
		if _, err := w.Write(got); err != nil {
			return err
		}
		total += int64(outLen)
	}
}

var errCorrupt = errors.New("corrupt patch")

func corrupt(format string, a ...any) error {
	return fault.Errorf(fault.Integrity, "blobpatch: %w: %s", errCorrupt, fmt.Sprintf(format, a...))
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
