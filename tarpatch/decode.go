package tarpatch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/ctxio"
)

// Codec names the format Encode writes, in plans and sidecars.
const Codec = "diffah-tar/4"

// CodecV3, CodecV2 and CodecV1 are the previous formats, which Decode
// still reads: diffah-tar/3 is diffah-tar/4 without the edit form of a
// small layer (edit.go), diffah-tar/2 diffah-tar/3 without re-indented
// dictionary ranges, diffah-tar/1 diffah-tar/2 without the ADIFF and
// XADIFF ops.
const (
	CodecV3 = "diffah-tar/3"
	CodecV2 = "diffah-tar/2"
	CodecV1 = "diffah-tar/1"
)

// CodecBundle names, in a sidecar, a patch in the Codec format some of
// whose sources are layers the same archive rebuilds first rather than
// baseline layers (a bundle's images drawing on each other's new
// layers). The payload is the same; the name makes readers that cannot
// find such sources refuse the patch by its codec.
const CodecBundle = "diffah-tar-bundle/4"

// CodecBundleV3 is CodecBundle with a diffah-tar/3 payload.
const CodecBundleV3 = "diffah-tar-bundle/3"

// Decodes reports whether Decode reads patches of the named codec.
func Decodes(codec string) bool {
	switch codec {
	case Codec, CodecV3, CodecV2, CodecV1, CodecBundle, CodecBundleV3:
		return true
	}
	return false
}

var (
	magic   = []byte("DFHTAR3\n")
	magicV2 = []byte("DFHTAR2\n")
	magicV1 = []byte("DFHTAR1\n")
)

// wholeMagic starts the whole form of a patch, for small layers: one zstd
// frame of the tar itself, compressed against the concatenated sources.
var wholeMagic = []byte("DFHTAR1W")

const (
	opEnd   = 0
	opLit   = 1
	opCopy  = 2
	opDelta = 3
)

// Limits that bound what a patch can make the decoder allocate. Each is
// what the encoder itself produces, so a real patch never meets one; they
// hold for every byte a hostile patch decodes to, while it decodes.
const (
	// MaxDict bounds one DELTA or MATCH dictionary: the encoder's
	// dictWindow.
	MaxDict = dictWindow
	// MaxOut bounds one DELTA or MATCH output: the encoder's largest
	// chunk (Encode clamps MaxChunk to it).
	MaxOut = dictWindow * 3 / 8
	// MaxRanges bounds the ranges of one dictionary.
	MaxRanges = 4096
	// maxWindow bounds the zstd window of a DELTA payload or MATCH
	// section: the encoder's window spans dictionary and data, at most
	// dictWindow.
	maxWindow = dictWindow
	// DecodeMemory is about the most Decode allocates, whatever the
	// patch: the op stream's zstd window (streamWindow) and dictionary
	// (at most maxHeaderDict or SmallLayer), the history ring
	// (HistSize), and one op's buffers (a dictionary, an output, a
	// payload and the MATCH sections; see opMemory). Callers that
	// decode in parallel budget it per Decode (resolve does).
	DecodeMemory = streamWindow + SmallLayer + HistSize + opMemory + 8<<20
	// opMemory bounds the buffers ops keep: a dictionary, an output, a
	// payload (or a MATCH section's frame), and the four MATCH sections.
	opMemory = MaxDict + MaxOut + (MaxOut + MaxOut/8 + 1<<16) + MaxOut + 3*matchSectionMax
)

// payloadMax bounds the zstd frame of a DELTA payload or a MATCH section
// that decodes to at most n bytes: zstd never expands by more than a
// block header per 128 KiB block, plus the frame header.
func payloadMax(n uint64) uint64 { return n + n/8 + 1<<16 }

// Source is an uncompressed source tar with random access.
type Source interface {
	io.ReaderAt
	Size() int64
}

// DecodeOptions bound decoding.
type DecodeOptions struct {
	// MaxOutput is the most bytes Decode may write (the layer's
	// uncompressed size); required.
	MaxOutput int64
}

type decodeErr struct {
	op  int
	off int64
	err error
}

func (d *decodeErr) Error() string {
	return fmt.Sprintf("tarpatch: op %d (output offset %d): %v", d.op, d.off, d.err)
}
func (d *decodeErr) Unwrap() error { return d.err }

// Decode rebuilds the tar from patch and sources into w.
func Decode(ctx context.Context, w io.Writer, patch io.Reader, sources []Source, o DecodeOptions) error {
	if o.MaxOutput <= 0 {
		return fault.Errorf(fault.Integrity, "tarpatch: no output size limit given")
	}
	br := bufio.NewReader(patch)
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(br, head); err != nil || !bytes.Equal(head, magic) && !bytes.Equal(head, magicV2) && !bytes.Equal(head, magicV1) && !bytes.Equal(head, wholeMagic) && !bytes.Equal(head, editMagic) {
		return fault.Errorf(fault.Integrity, "tarpatch: not a %s patch (bad magic)", Codec)
	}
	if bytes.Equal(head, wholeMagic) {
		// zstd reads an empty stream as no output: a patch cut right
		// after its magic must not pass for an empty layer.
		if _, err := br.Peek(1); err != nil {
			return fault.Errorf(fault.Integrity, "tarpatch: whole-layer patch: no frame after the magic (truncated?)")
		}
		return decodeWhole(ctx, w, br, sources, o)
	}
	if bytes.Equal(head, editMagic) {
		return decodeEdit(ctx, w, br, sources, o)
	}
	// The op stream's window is the encoder's (streamWindow): a frame
	// claiming more is refused before its history is allocated.
	zopts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(streamWindow), zstd.WithDecoderMaxMemory(streamWindow)}
	hd, err := streamDict(sources)
	if err != nil {
		return err
	}
	if len(hd) > 0 {
		zopts = append(zopts, zstd.WithDecoderDictRaw(dictID, hd))
	}
	zr, err := zstd.NewReader(br, zopts...)
	if err != nil {
		return fault.Errorf(fault.Internal, "tarpatch: %w", err)
	}
	defer zr.Close()
	ops := bufio.NewReaderSize(zr, 1<<20)
	d := &decoder{w: w, sources: sources, max: o.MaxOutput, ops: ops, version: 1}
	switch {
	case bytes.Equal(head, magic):
		d.version = 3
	case bytes.Equal(head, magicV2):
		d.version = 2
	}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := d.op()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fault.Wrap(fault.Integrity, &decodeErr{op: n, off: d.out, err: err})
		}
		if done {
			break
		}
	}
	// Nothing may follow END, neither in the op stream nor after it.
	if _, err := ops.ReadByte(); err != io.EOF {
		return fault.Errorf(fault.Integrity, "tarpatch: data after the end of the patch")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fault.Errorf(fault.Integrity, "tarpatch: data after the end of the patch")
	}
	return nil
}

// decodeWhole decodes the whole form of a patch (wholeMagic read).
func decodeWhole(ctx context.Context, w io.Writer, r io.Reader, sources []Source, o DecodeOptions) error {
	if !isSmall(sources) {
		return fault.Errorf(fault.Integrity, "tarpatch: a whole-layer patch needs sources of at most %d bytes in all", SmallLayer)
	}
	dict, err := streamDict(sources)
	if err != nil {
		return err
	}
	zopts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(streamWindow), zstd.WithDecoderMaxMemory(streamWindow)}
	if len(dict) > 0 {
		zopts = append(zopts, zstd.WithDecoderDictRaw(dictID, dict))
	}
	zr, err := zstd.NewReader(r, zopts...)
	if err != nil {
		return fault.Errorf(fault.Internal, "tarpatch: %w", err)
	}
	defer zr.Close()
	cw := &capWriter{w: w, left: o.MaxOutput}
	if _, err := io.Copy(cw, ctxio.Reader{Ctx: ctx, R: zr}); err != nil {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case cw.over:
			return fault.Errorf(fault.Integrity, "tarpatch: whole-layer patch: output would exceed the expected %d bytes (decompression bomb?)", o.MaxOutput)
		case cw.err != nil:
			return fault.Wrap(fault.Env, cw.err)
		}
		return fault.Errorf(fault.Integrity, "tarpatch: whole-layer patch: %w", err)
	}
	return nil
}

// capWriter passes at most left bytes to w and tells its own refusal and
// w's errors from the reader's.
type capWriter struct {
	w    io.Writer
	left int64
	over bool
	err  error
}

var errOver = errors.New("output limit reached")

func (c *capWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		c.over = true
		return 0, errOver
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// HistSize is how much recent output a patch may refer back to: a file
// may use an earlier file of the same layer as part of its dictionary, so
// an edit repeated in several files is paid for once.
const HistSize = 32 << 20

// history is the decoder's window on its own recent output, addressed by
// absolute output offset.
type history struct {
	ring []byte
	end  int64 // absolute offset of the byte after the last one kept
}

func (h *history) add(p []byte) {
	if h.ring == nil {
		h.ring = make([]byte, HistSize)
	}
	for len(p) > 0 {
		i := int(h.end % HistSize)
		n := copy(h.ring[i:], p)
		p = p[n:]
		h.end += int64(n)
	}
}

func (h *history) Size() int64 { return h.end }

func (h *history) ReadAt(p []byte, off int64) (int, error) {
	if off < h.end-HistSize || off+int64(len(p)) > h.end || h.ring == nil {
		return 0, fmt.Errorf("history range %d+%d is outside the last %d bytes of output", off, len(p), HistSize)
	}
	n := 0
	for n < len(p) {
		i := int((off + int64(n)) % HistSize)
		n += copy(p[n:], h.ring[i:])
	}
	return n, nil
}

type decoder struct {
	hist    history
	w       io.Writer
	sources []Source
	max     int64
	out     int64
	ops     *bufio.Reader
	// Buffers reused from op to op, so a patch of many ops allocates
	// each once: an op's output, its dictionary, its payload or MATCH
	// sections.
	buf     []byte
	dict    []byte
	enc     []byte
	secs    [4][]byte
	dec     *zstd.Decoder
	version int // of the format: 1, 2 (which adds ADIFF) or 3 (shifted ranges)
}

// reuse returns b resliced to n bytes, reallocated only when too small.
func reuse(b []byte, n uint64) []byte {
	if uint64(cap(b)) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func (d *decoder) uvarint(what string, max uint64) (uint64, error) {
	v, err := binary.ReadUvarint(d.ops)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", what, err)
	}
	if v > max {
		return 0, fmt.Errorf("%s %d exceeds %d", what, v, max)
	}
	return v, nil
}

func (d *decoder) grow(n uint64) error {
	if int64(n) > d.max-d.out {
		return fmt.Errorf("output would exceed the expected %d bytes (decompression bomb?)", d.max)
	}
	return nil
}

func (d *decoder) write(p []byte) error {
	if _, err := d.w.Write(p); err != nil {
		return fault.Wrap(fault.Env, err)
	}
	d.hist.add(p)
	d.out += int64(len(p))
	return nil
}

// srcRange validates a source range.
func (d *decoder) srcRange() (Source, int64, int64, error) {
	si, err := d.uvarint("source", uint64(len(d.sources)))
	if err != nil {
		return nil, 0, 0, err
	}
	// Index len(sources) is the output itself (history).
	var s Source = &d.hist
	if si < uint64(len(d.sources)) {
		s = d.sources[si]
	}
	off, err := d.uvarint("offset", uint64(s.Size()))
	if err != nil {
		return nil, 0, 0, err
	}
	n, err := d.uvarint("length", uint64(s.Size())-off)
	if err != nil {
		return nil, 0, 0, err
	}
	return s, int64(off), int64(n), nil
}

func (d *decoder) op() (bool, error) {
	kind, err := d.ops.ReadByte()
	if err != nil {
		return false, fmt.Errorf("reading op: %w", err)
	}
	switch kind {
	case opEnd:
		return true, nil
	case opLit:
		n, err := d.uvarint("literal length", 1<<62)
		if err != nil {
			return false, err
		}
		if err := d.grow(n); err != nil {
			return false, err
		}
		w, err := io.CopyN(writerFunc(d.write), d.ops, int64(n))
		if err != nil {
			return false, fmt.Errorf("literal: %d of %d bytes: %w", w, n, err)
		}
	case opCopy:
		s, off, n, err := d.srcRange()
		if err != nil {
			return false, err
		}
		if err := d.grow(uint64(n)); err != nil {
			return false, err
		}
		if _, err := io.Copy(writerFunc(d.write), io.NewSectionReader(s, off, n)); err != nil {
			return false, fmt.Errorf("copy from source: %w", err)
		}
	case opDelta:
		return false, d.delta()
	case opMatch:
		return false, d.match(false)
	case opMatchIn:
		return false, d.match(true)
	case opADiff:
		return false, d.adiff()
	case opXADiff:
		return false, d.xadiff()
	default:
		return false, fmt.Errorf("unknown op 0x%02x", kind)
	}
	return false, nil
}

// dictRanges reads a range list and assembles its dictionary.
func (d *decoder) dictRanges() ([]byte, error) {
	nr, err := d.uvarint("range count", MaxRanges)
	if err != nil {
		return nil, err
	}
	// The ranges are read and summed first, so the dictionary is
	// allocated once, at its final size, and only when within MaxDict.
	type span struct {
		s       Source
		off, n  int64
		shift   int
		shifted int64 // length after the shift
	}
	spans := make([]span, 0, nr)
	var total int64
	for i := uint64(0); i < nr; i++ {
		s, off, n, err := d.srcRange()
		if err != nil {
			return nil, err
		}
		sp := span{s: s, off: off, n: n, shifted: n}
		if d.version >= 3 {
			sh, err := binary.ReadVarint(d.ops)
			if err != nil {
				return nil, fmt.Errorf("reading range shift: %w", err)
			}
			if sh < -maxShift || sh > maxShift {
				return nil, fmt.Errorf("range shift %d outside ±%d", sh, maxShift)
			}
			sp.shift = int(sh)
			if sp.shift != 0 {
				// A first pass measures the shifted range, so the
				// dictionary is still allocated once, within MaxDict.
				if sp.shifted, err = d.shiftRange(nil, sp.s, sp.off, sp.n, sp.shift, MaxDict-total); err != nil {
					return nil, err
				}
			}
		}
		if total += sp.shifted; total > MaxDict {
			return nil, fmt.Errorf("dictionary larger than %d bytes", MaxDict)
		}
		spans = append(spans, sp)
	}
	d.dict = reuse(d.dict, uint64(total))
	dict := d.dict
	at := int64(0)
	for _, sp := range spans {
		if sp.shift != 0 {
			if _, err := d.shiftRange(dict[at:at+sp.shifted], sp.s, sp.off, sp.n, sp.shift, sp.shifted); err != nil {
				return nil, err
			}
		} else if _, err := sp.s.ReadAt(dict[at:at+sp.n], sp.off); err != nil {
			return nil, fmt.Errorf("reading dictionary: %w", err)
		}
		at += sp.shifted
	}
	return dict, nil
}

// shiftRange re-indents n bytes of s at off (see reindent.go) piece by
// piece, into dst when it is not nil (then exactly len(dst) bytes), and
// returns the shifted length, refusing more than max bytes.
func (d *decoder) shiftRange(dst []byte, s Source, off, n int64, shift int, max int64) (int64, error) {
	d.enc = reuse(d.enc, 64<<10)
	piece := d.enc
	var out []byte
	st := lineStart
	var total int64
	for done := int64(0); done < n; {
		k := min(int64(len(piece)), n-done)
		if _, err := s.ReadAt(piece[:k], off+done); err != nil {
			return 0, fmt.Errorf("reading dictionary: %w", err)
		}
		done += k
		out, st = reindent(out[:0], piece[:k], shift, st)
		if total+int64(len(out)) > max {
			return 0, fmt.Errorf("shifted dictionary range larger than %d bytes", max)
		}
		if dst != nil {
			copy(dst[total:], out)
		}
		total += int64(len(out))
	}
	return total, nil
}

func (d *decoder) delta() error {
	dict, err := d.dictRanges()
	if err != nil {
		return err
	}
	outLen, err := d.uvarint("delta output length", MaxOut)
	if err != nil {
		return err
	}
	if err := d.grow(outLen); err != nil {
		return err
	}
	encLen, err := d.uvarint("delta payload length", payloadMax(outLen))
	if err != nil {
		return err
	}
	d.enc = reuse(d.enc, encLen)
	enc := d.enc
	if _, err := io.ReadFull(d.ops, enc); err != nil {
		return fmt.Errorf("delta payload: %w", err)
	}
	// The output may not grow past outLen (DecodeAllCapLimit with a buffer
	// of exactly that capacity); the window is bounded separately.
	opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecodeAllCapLimit(true)}
	if len(dict) > 0 {
		opts = append(opts, zstd.WithDecoderDictRaw(dictID, dict))
	}
	dec, err := zstd.NewReader(nil, opts...)
	if err != nil {
		return fmt.Errorf("delta decoder: %w", err)
	}
	defer dec.Close()
	if cap(d.buf) < int(outLen) {
		d.buf = make([]byte, 0, outLen)
	}
	out, err := dec.DecodeAll(enc, d.buf[:0:outLen])
	if err != nil {
		return fmt.Errorf("delta payload: %w", err)
	}
	if uint64(len(out)) != outLen {
		return fmt.Errorf("delta decoded to %d bytes, expected %d", len(out), outLen)
	}
	return d.write(out)
}

// dictID is the id both sides give raw dictionaries; it is never written
// into frames that matter (raw dictionaries carry no id check).
const dictID = 1

type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// editOp is one decoded op of the edit form.
type editOp struct {
	kind byte
	ent  int   // old entry (COPY: the first)
	n    int64 // COPY: entries; EDIT, EDITH: content size; RAW, END: bytes
	// zeros is END's zero bytes, before its n.
	zeros int64
}

// decodeEdit decodes the edit form of a patch (editMagic read).
func decodeEdit(ctx context.Context, w io.Writer, br *bufio.Reader, sources []Source, o DecodeOptions) error {
	if !isSmall(sources) {
		return fault.Errorf(fault.Integrity, "tarpatch: an edit-form patch needs sources of at most %d bytes in all", SmallLayer)
	}
	bad := func(f string, a ...any) error {
		return fault.Errorf(fault.Integrity, "tarpatch: edit-form patch: "+f, a...)
	}
	opsLen, err := binary.ReadUvarint(br)
	if err != nil || opsLen > maxEditOps {
		return bad("bad op list length")
	}
	lr := &io.LimitedReader{R: br, N: int64(opsLen)}
	ob := bufio.NewReader(lr)
	old, oents, err := oldEntries(sources)
	if err != nil {
		return err
	}
	var ops []editOp
	dict := append([]byte(nil), old...)
	cur := 0
	var out int64
	for {
		kind, err := ob.ReadByte()
		if err != nil {
			return bad("op list cut short")
		}
		op := editOp{kind: kind}
		switch kind {
		case eopCopy, eopEdit, eopEditH:
			jump, err := binary.ReadVarint(ob)
			if err != nil {
				return bad("op %d: bad entry", len(ops))
			}
			var n int64
			if kind == eopCopy {
				u, err := binary.ReadUvarint(ob)
				if err != nil || u > uint64(len(oents)) {
					return bad("op %d: bad count", len(ops))
				}
				n = int64(u)
			} else if n, err = binary.ReadVarint(ob); err != nil {
				return bad("op %d: bad size", len(ops))
			}
			if jump < -int64(len(oents)) || jump > int64(len(oents)) {
				return bad("op %d: bad entry", len(ops))
			}
			j := int64(cur) + jump
			if j < 0 || j >= int64(len(oents)) {
				return bad("op %d: old entry %d of %d", len(ops), j, len(oents))
			}
			op.ent = int(j)
			if kind == eopCopy {
				if n <= 0 || n > int64(len(oents))-j {
					return bad("op %d: %d entries from old entry %d of %d", len(ops), n, j, len(oents))
				}
				op.n = n
				cur = op.ent + int(n)
				for _, e := range oents[op.ent:cur] {
					out += e.end - e.off
				}
			} else {
				// The size travels as its change from the old entry's.
				if n < -o.MaxOutput || n > o.MaxOutput || oents[j].size+n < 0 || oents[j].size+n > o.MaxOutput {
					return bad("op %d: content size %+d from %d", len(ops), n, oents[j].size)
				}
				op.n = oents[j].size + n
				cur = op.ent + 1
				out += blockSize + (op.n+blockSize-1)/blockSize*blockSize
				dict = editDict(dict, old, oents[op.ent], kind)
			}
		case eopRaw, eopEnd:
			if kind == eopEnd {
				z, err := binary.ReadUvarint(ob)
				if err != nil || z > uint64(o.MaxOutput) {
					return bad("op %d: bad length", len(ops))
				}
				op.zeros = int64(z)
				out += op.zeros
			}
			n, err := binary.ReadUvarint(ob)
			if err != nil || n > uint64(o.MaxOutput) {
				return bad("op %d: bad length", len(ops))
			}
			op.n = int64(n)
			out += op.n
		default:
			return bad("op %d: unknown op %d", len(ops), kind)
		}
		if out > o.MaxOutput {
			return bad("output would exceed the expected %d bytes", o.MaxOutput)
		}
		ops = append(ops, op)
		if kind == eopEnd {
			break
		}
		if len(ops) >= maxEditOps {
			return bad("too many ops")
		}
	}
	if _, err := ob.ReadByte(); err != io.EOF || lr.N != 0 {
		return bad("op list length is not its ops'")
	}
	zopts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(streamWindow), zstd.WithDecoderMaxMemory(streamWindow)}
	if len(dict) > 0 {
		zopts = append(zopts, zstd.WithDecoderDictRaw(0, dict))
	}
	zr, err := zstd.NewReader(io.MultiReader(bytes.NewReader(zstdMagic), br), zopts...)
	if err != nil {
		return fault.Errorf(fault.Internal, "tarpatch: %w", err)
	}
	defer zr.Close()
	bw := bufio.NewWriterSize(w, 1<<16)
	take := func(n int64) error {
		if _, err := io.CopyN(bw, zr, n); err != nil {
			if errors.Is(err, io.EOF) {
				return bad("frame cut short")
			}
			if ferr := bw.Flush(); ferr != nil {
				return fault.Wrap(fault.Env, ferr)
			}
			return bad("%v", err)
		}
		return nil
	}
	zero := make([]byte, blockSize)
	for i, op := range ops {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch op.kind {
		case eopCopy:
			for _, e := range oents[op.ent : op.ent+int(op.n)] {
				if _, err := bw.Write(old[e.off:e.end]); err != nil {
					return fault.Wrap(fault.Env, err)
				}
			}
		case eopEdit, eopEditH:
			if op.kind == eopEdit {
				h, ok := resized(old[oents[op.ent].off:], op.n)
				if !ok {
					return bad("op %d: size %d does not fit a header", i, op.n)
				}
				if _, err := bw.Write(h); err != nil {
					return fault.Wrap(fault.Env, err)
				}
			} else if err := take(blockSize); err != nil {
				return err
			}
			if err := take(op.n); err != nil {
				return err
			}
			if pad := (blockSize - op.n%blockSize) % blockSize; pad > 0 {
				if _, err := bw.Write(zero[:pad]); err != nil {
					return fault.Wrap(fault.Env, err)
				}
			}
		default:
			for z := op.zeros; z > 0; z -= min(z, blockSize) {
				if _, err := bw.Write(zero[:min(z, blockSize)]); err != nil {
					return fault.Wrap(fault.Env, err)
				}
			}
			if err := take(op.n); err != nil {
				return err
			}
		}
	}
	if n, err := io.ReadFull(zr, make([]byte, 1)); n != 0 || err != io.EOF {
		return bad("data after the end of the patch")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return bad("data after the end of the patch")
	}
	return fault.Wrap(fault.Env, bw.Flush())
}
