package deflatetok

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/diffah/diffah/fault"
)

// Decode rewrites the gzip blob r into its token form on w. A blob that is not gzip, or whose deflate stream it
// cannot rewrite exactly, gives an error wrapping ErrNotGzip.
func Decode(ctx context.Context, w io.Writer, r io.Reader) error {
	return decode(ctx, w, r, false)
}

// DecodeInline is Decode keeping the content in the form (magic
// "DFHDTOK1": a literal run is followed by its bytes, a stored block by
// its bytes), for EncodeInline: one stream to patch, for layers whose
// content patches no better as a tar.
func DecodeInline(ctx context.Context, w io.Writer, r io.Reader) error {
	return decode(ctx, w, r, true)
}

func decode(ctx context.Context, w io.Writer, r io.Reader, inline bool) error {
	br := bufio.NewReaderSize(r, 1<<20)
	bw := bufio.NewWriterSize(w, 1<<20)
	if inline {
		bw.WriteString(magicInline)
	} else {
		bw.WriteString(magic)
	}
	d := &decoder{in: &bitReader{r: br}, out: bw, inline: inline}
	members := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		head, _ := br.Peek(2)
		if members > 0 && (len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b) {
			break
		}
		if err := d.member(ctx); err != nil {
			return fmt.Errorf("%w: member %d: %v", ErrNotGzip, members+1, err)
		}
		members++
	}
	// Whatever follows the last member travels as it is.
	tail, err := io.ReadAll(io.LimitReader(br, maxTail+1))
	if err != nil {
		return fault.Errorf(fault.Env, "deflatetok: reading the blob: %w", err)
	}
	if len(tail) > maxTail {
		return fmt.Errorf("%w: more than %d bytes after the last gzip member", ErrNotGzip, maxTail)
	}
	bw.WriteByte(tagEnd)
	appendUvarint(bw, uint64(len(tail)))
	bw.Write(tail)
	if err := bw.Flush(); err != nil {
		return fault.Errorf(fault.Env, "deflatetok: writing the token form: %w", err)
	}
	return nil
}

type decoder struct {
	in   *bitReader
	out  *bufio.Writer
	lits int // literals not yet written as a run
	// inline keeps the content in the form (literal and stored bytes),
	// in litBuf until a run is written.
	inline bool
	litBuf []byte
	lit    huffman
	dist   huffman
	cl     huffman
	// content counts the uncompressed bytes so far; onBlock, when set,
	// is called at the start of every block (Blocks).
	content  int64
	onBlock  func(Block) error
	onEnd    func()
	onHeader func(int)
}

func (d *decoder) member(ctx context.Context) error {
	hdr, err := gzipHeader(d.in.r)
	if err != nil {
		return err
	}
	if d.onHeader != nil {
		d.onHeader(len(hdr))
	}
	d.out.WriteByte(tagMember)
	appendUvarint(d.out, uint64(len(hdr)))
	d.out.Write(hdr)
	for final := false; !final; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.onBlock != nil {
			if err := d.onBlock(Block{Bit: d.in.pos*8 - int64(d.in.nbits), Content: d.content}); err != nil {
				return err
			}
		}
		h := d.in.read(3)
		if d.in.err != nil {
			return d.in.err
		}
		final = h&1 == 1
		btype := h >> 1
		d.out.WriteByte(byte(h))
		switch btype {
		case 0:
			if err := d.stored(); err != nil {
				return err
			}
		case 1:
			if err := d.tokens(&fixedLit, &fixedDist); err != nil {
				return err
			}
		case 2:
			if err := d.dynamic(); err != nil {
				return err
			}
			if err := d.tokens(&d.lit, &d.dist); err != nil {
				return err
			}
		default:
			return errors.New("reserved block type 3")
		}
	}
	if d.onEnd != nil {
		d.onEnd()
	}
	d.out.WriteByte(d.in.align())
	var trailer [8]byte
	if err := d.in.readFull(trailer[:]); err != nil {
		return errors.New("truncated gzip trailer")
	}
	d.out.Write(trailer[:])
	return nil
}

// gzipHeader reads a gzip member header (RFC 1952 2.3) and returns its
// bytes exactly.
func gzipHeader(r *bufio.Reader) ([]byte, error) {
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(r, hdr); err != nil || hdr[0] != 0x1f || hdr[1] != 0x8b || hdr[2] != 8 {
		return nil, errors.New("no gzip deflate header")
	}
	flg := hdr[3]
	if flg&0xe0 != 0 {
		return nil, errors.New("reserved gzip flags set")
	}
	if flg&0x04 != 0 {
		var xl [2]byte
		if _, err := io.ReadFull(r, xl[:]); err != nil {
			return nil, errors.New("truncated gzip extra field")
		}
		hdr = append(hdr, xl[:]...)
		extra := make([]byte, binary.LittleEndian.Uint16(xl[:]))
		if _, err := io.ReadFull(r, extra); err != nil {
			return nil, errors.New("truncated gzip extra field")
		}
		hdr = append(hdr, extra...)
	}
	for _, f := range []byte{0x08, 0x10} { // name, comment: zero-terminated
		if flg&f == 0 {
			continue
		}
		for {
			c, err := r.ReadByte()
			if err != nil || len(hdr) > maxHeader {
				return nil, errors.New("unterminated gzip name or comment")
			}
			hdr = append(hdr, c)
			if c == 0 {
				break
			}
		}
	}
	if flg&0x02 != 0 {
		var crc [2]byte
		if _, err := io.ReadFull(r, crc[:]); err != nil {
			return nil, errors.New("truncated gzip header CRC")
		}
		hdr = append(hdr, crc[:]...)
	}
	return hdr, nil
}

func (d *decoder) stored() error {
	d.out.WriteByte(d.in.align())
	var ln [4]byte
	if err := d.in.readFull(ln[:]); err != nil {
		return errors.New("truncated stored block")
	}
	n := binary.LittleEndian.Uint16(ln[:2])
	if binary.LittleEndian.Uint16(ln[2:]) != ^n {
		return errors.New("stored block LEN/NLEN mismatch")
	}
	appendUvarint(d.out, uint64(n))
	d.in.pos += int64(n)
	d.content += int64(n)
	if d.inline {
		if _, err := io.CopyN(d.out, d.in.r, int64(n)); err != nil {
			return errors.New("truncated stored block")
		}
		return nil
	}
	// The bytes themselves are content: they travel in the tar.
	if _, err := d.in.r.Discard(int(n)); err != nil {
		return errors.New("truncated stored block")
	}
	return nil
}

func (d *decoder) dynamic() error {
	in := d.in
	hlit, hdist, hclen := in.read(5)+257, in.read(5)+1, in.read(4)+4
	if in.err != nil {
		return in.err
	}
	if hlit > 286 || hdist > 30 {
		return errors.New("too many length or distance codes")
	}
	d.out.Write([]byte{byte(hlit - 257), byte(hdist - 1), byte(hclen - 4)})
	var cll [19]uint8
	for i := uint32(0); i < hclen; i++ {
		cll[clOrder[i]] = uint8(in.read(3))
		d.out.WriteByte(cll[clOrder[i]])
	}
	if in.err != nil {
		return in.err
	}
	if err := d.cl.build(cll[:]); err != nil {
		return err
	}
	lengths := make([]uint8, hlit+hdist)
	for i := 0; i < len(lengths); {
		sym, err := in.decode(&d.cl)
		if err != nil {
			return err
		}
		d.out.WriteByte(byte(sym))
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return errors.New("repeat with no previous length")
			}
			val, rep = lengths[i-1], 3+int(in.read(2))
		case 17:
			rep = 3 + int(in.read(3))
		default:
			rep = 11 + int(in.read(7))
		}
		d.out.WriteByte(byte(rep))
		if in.err != nil {
			return in.err
		}
		if i+rep > len(lengths) {
			return errors.New("code lengths repeat past the end")
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return errors.New("no end-of-block code")
	}
	if err := d.lit.build(lengths[:hlit]); err != nil {
		return err
	}
	return d.dist.build(lengths[hlit:])
}

func (d *decoder) flushLits() {
	if d.lits > 0 {
		d.out.WriteByte(tokLits)
		appendUvarint(d.out, uint64(d.lits))
		if d.inline {
			d.out.Write(d.litBuf)
			d.litBuf = d.litBuf[:0]
		}
		d.lits = 0
	}
}

func (d *decoder) tokens(lit, dist *huffman) error {
	in := d.in
	d.lits = 0
	for {
		sym, err := in.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			d.lits++
			d.content++
			if d.inline {
				d.litBuf = append(d.litBuf, byte(sym))
			}
			if d.lits == maxLitRun {
				d.flushLits()
			}
			continue
		case sym == 256:
			d.flushLits()
			d.out.WriteByte(tokEOB)
			return nil
		case sym > 285:
			return errors.New("invalid length symbol")
		}
		d.flushLits()
		ls := sym - 257
		le := in.read(uint(lenExtra[ls]))
		ds, err := in.decode(dist)
		if err != nil {
			return err
		}
		if ds > 29 {
			return errors.New("invalid distance symbol")
		}
		de := in.read(uint(distExtr[ds]))
		if in.err != nil {
			return in.err
		}
		d.content += int64(lenBase[ls]) + int64(le)
		d.out.Write(append(d.out.AvailableBuffer(), tokMatch, byte(ls), byte(le), byte(ds), byte(de), byte(de>>8)))
	}
}

// EncodeOptions bound Encode.
type EncodeOptions struct {
	// MaxOutput bounds the rebuilt blob.
	MaxOutput int64
}

// Encode rebuilds the gzip blob from its token form r and its content
// (the concatenated uncompressed members: the layer's tar), writing it to
// w. Every field of the form is checked before it is used, and the
// content must be used up exactly; a malformed form is an integrity
// error. (That the content is the right one the caller checks: the tar
// against its diffID, the blob against its digest.)
func Encode(ctx context.Context, w io.Writer, r io.Reader, content io.Reader, o EncodeOptions) error {
	return encode(ctx, w, r, content, o)
}

// EncodeInline rebuilds the blob from a form DecodeInline wrote.
func EncodeInline(ctx context.Context, w io.Writer, r io.Reader, o EncodeOptions) error {
	return encode(ctx, w, r, nil, o)
}

func encode(ctx context.Context, w io.Writer, r io.Reader, content io.Reader, o EncodeOptions) error {
	br := bufio.NewReaderSize(r, 1<<20)
	lw := &limitWriter{w: w, left: o.MaxOutput}
	e := &encoder{in: br, content: br, inline: true, out: &bitWriter{w: lw, buf: make([]byte, 0, 68<<10)}}
	want := magicInline
	if content != nil {
		e.content, e.inline, want = bufio.NewReaderSize(content, 1<<20), false, magic
	}
	head := make([]byte, len(want))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != want {
		return corrupt("bad magic")
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		tag, err := br.ReadByte()
		if err != nil {
			return corrupt("truncated: no end marker")
		}
		if tag == tagEnd {
			break
		}
		if tag != tagMember {
			return corrupt("unknown tag 0x%02x", tag)
		}
		if err := e.member(ctx); err != nil {
			if lw.err != nil {
				return lw.err
			}
			return err
		}
	}
	n, err := e.uvarint(maxTail)
	if err != nil {
		return err
	}
	if err := e.raw(e.in, n); err != nil {
		return err
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return corrupt("data after the end")
	}
	if _, err := e.content.ReadByte(); !e.inline && err != io.EOF {
		return corrupt("content longer than the stream")
	}
	e.out.flush()
	if lw.err != nil {
		return lw.err
	}
	return e.out.err
}

type encoder struct {
	in      *bufio.Reader
	content *bufio.Reader // the form itself when inline
	inline  bool
	out     *bitWriter
	lit     huffman
	dist    huffman
	cl      huffman
	buf     []byte
}

func (e *encoder) byte() (byte, error) {
	c, err := e.in.ReadByte()
	if err != nil {
		return 0, corrupt("truncated")
	}
	return c, nil
}

func (e *encoder) uvarint(max uint64) (uint64, error) {
	v, err := binary.ReadUvarint(e.in)
	if err != nil {
		return 0, corrupt("bad length: %v", err)
	}
	if v > max {
		return 0, corrupt("length %d over %d", v, max)
	}
	return v, nil
}

// raw copies n bytes of src (the form, or the content) to the output.
func (e *encoder) raw(src *bufio.Reader, n uint64) error {
	if cap(e.buf) < int(n) {
		e.buf = make([]byte, n)
	}
	b := e.buf[:n]
	if _, err := io.ReadFull(src, b); err != nil {
		if src == e.content && !e.inline {
			return corrupt("content shorter than the stream")
		}
		return corrupt("truncated")
	}
	for _, c := range b {
		e.out.write(uint32(c), 8)
	}
	return nil
}

func (e *encoder) member(ctx context.Context) error {
	if !e.out.aligned() {
		return corrupt("member not byte-aligned")
	}
	n, err := e.uvarint(maxHeader)
	if err != nil {
		return err
	}
	if err := e.raw(e.in, n); err != nil {
		return err
	}
	for final := false; !final; {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := e.byte()
		if err != nil {
			return err
		}
		if h > 7 {
			return corrupt("block header 0x%02x", h)
		}
		final = h&1 == 1
		e.out.write(uint32(h), 3)
		switch h >> 1 {
		case 0:
			if err := e.stored(); err != nil {
				return err
			}
		case 1:
			if err := e.tokens(&fixedLit, &fixedDist); err != nil {
				return err
			}
		case 2:
			if err := e.dynamic(); err != nil {
				return err
			}
			if err := e.tokens(&e.lit, &e.dist); err != nil {
				return err
			}
		default:
			return corrupt("reserved block type")
		}
	}
	if err := e.pad(); err != nil {
		return err
	}
	return e.raw(e.in, 8)
}

func (e *encoder) pad() error {
	p, err := e.byte()
	if err != nil {
		return err
	}
	return e.padWith(p)
}

// padWith completes the current byte with the recorded pad bits p,
// which must fit in what is left of it.
func (e *encoder) padWith(p byte) error {
	if r := e.out.partial(); r == 0 && p != 0 || r > 0 && p>>(8-r) != 0 {
		return corrupt("pad bits 0x%02x do not fit", p)
	}
	e.out.flushByte(p)
	return nil
}

func (e *encoder) stored() error {
	if err := e.pad(); err != nil {
		return err
	}
	n, err := e.uvarint(0xffff)
	if err != nil {
		return err
	}
	e.out.write(uint32(n), 16)
	e.out.write(uint32(^uint16(n)), 16)
	return e.raw(e.content, n)
}

func (e *encoder) dynamic() error {
	var h [3]byte
	if _, err := io.ReadFull(e.in, h[:]); err != nil {
		return corrupt("truncated dynamic header")
	}
	hlit, hdist, hclen := int(h[0])+257, int(h[1])+1, int(h[2])+4
	if hlit > 286 || hdist > 30 || hclen > 19 {
		return corrupt("dynamic header counts %d/%d/%d", hlit, hdist, hclen)
	}
	e.out.write(uint32(hlit-257), 5)
	e.out.write(uint32(hdist-1), 5)
	e.out.write(uint32(hclen-4), 4)
	var cll [19]uint8
	for i := 0; i < hclen; i++ {
		c, err := e.byte()
		if err != nil {
			return err
		}
		if c > 7 {
			return corrupt("code length code length %d", c)
		}
		cll[clOrder[i]] = c
		e.out.write(uint32(c), 3)
	}
	if err := e.cl.build(cll[:]); err != nil {
		return corrupt("%v", err)
	}
	lengths := make([]uint8, hlit+hdist)
	for i := 0; i < len(lengths); {
		sym, err := e.byte()
		if err != nil {
			return err
		}
		if sym > 18 || e.cl.length[sym] == 0 {
			return corrupt("code length symbol %d has no code", sym)
		}
		e.out.write(uint32(e.cl.code[sym]), uint(e.cl.length[sym]))
		if sym < 16 {
			lengths[i] = sym
			i++
			continue
		}
		rep, err := e.byte()
		if err != nil {
			return err
		}
		var val uint8
		switch sym {
		case 16:
			if i == 0 || rep < 3 || rep > 6 {
				return corrupt("bad repeat")
			}
			val = lengths[i-1]
			e.out.write(uint32(rep-3), 2)
		case 17:
			if rep < 3 || rep > 10 {
				return corrupt("bad zero run")
			}
			e.out.write(uint32(rep-3), 3)
		default:
			if rep < 11 || rep > 138 {
				return corrupt("bad zero run")
			}
			e.out.write(uint32(rep-11), 7)
		}
		if i+int(rep) > len(lengths) {
			return corrupt("code lengths repeat past the end")
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return corrupt("no end-of-block code")
	}
	if err := e.lit.build(lengths[:hlit]); err != nil {
		return corrupt("%v", err)
	}
	if err := e.dist.build(lengths[hlit:]); err != nil {
		return corrupt("%v", err)
	}
	return nil
}

func (e *encoder) sym(h *huffman, s int) error {
	if s >= len(h.length) || h.length[s] == 0 {
		return corrupt("symbol %d has no code", s)
	}
	e.out.write(uint32(h.code[s]), uint(h.length[s]))
	return nil
}

func (e *encoder) tokens(lit, dist *huffman) error {
	for {
		t, err := e.byte()
		if err != nil {
			return err
		}
		switch t {
		case tokEOB:
			return e.sym(lit, 256)
		case tokLits:
			n, err := e.uvarint(maxLitRun)
			if err != nil {
				return err
			}
			if cap(e.buf) < int(n) {
				e.buf = make([]byte, n)
			}
			b := e.buf[:n]
			if _, err := io.ReadFull(e.content, b); err != nil {
				return corrupt("content shorter than the stream")
			}
			for _, c := range b {
				if err := e.sym(lit, int(c)); err != nil {
					return err
				}
			}
		case tokMatch:
			// Peeked, not read into an array (which would escape).
			m, err := e.in.Peek(5)
			if err != nil {
				return corrupt("truncated match")
			}
			ls, le, ds, de := int(m[0]), uint32(m[1]), int(m[2]), uint32(m[3])|uint32(m[4])<<8
			e.in.Discard(5)
			if ls > 28 || ds > 29 || le>>lenExtra[ls] != 0 || de>>distExtr[ds] != 0 {
				return corrupt("match %d/%d %d/%d out of range", ls, le, ds, de)
			}
			// The bytes a match copies are content the caller holds.
			if !e.inline {
				if _, err := e.content.Discard(int(lenBase[ls]) + int(le)); err != nil {
					return corrupt("content shorter than the stream")
				}
			}
			if err := e.sym(lit, 257+ls); err != nil {
				return err
			}
			e.out.write(le, uint(lenExtra[ls]))
			if err := e.sym(dist, ds); err != nil {
				return err
			}
			e.out.write(de, uint(distExtr[ds]))
		default:
			return corrupt("unknown token 0x%02x", t)
		}
	}
}

type limitWriter struct {
	w    io.Writer
	left int64
	err  error
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		l.err = corrupt("output grows past the expected size")
		return 0, l.err
	}
	l.left -= int64(len(p))
	n, err := l.w.Write(p)
	if err != nil && l.err == nil {
		l.err = fault.Wrap(fault.Env, err)
	}
	return n, err
}

// Inflate writes the content of every gzip member of r to w (the content
// Encode takes), stopping where no member follows: the token form keeps
// any bytes after the last member, which carry no content.
func Inflate(w io.Writer, r io.Reader) error {
	br := bufio.NewReader(r)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return err
	}
	for {
		zr.Multistream(false)
		if _, err := io.Copy(w, zr); err != nil {
			return err
		}
		if head, _ := br.Peek(2); len(head) < 2 || head[0] != 0x1f || head[1] != 0x8b {
			return nil
		}
		if err := zr.Reset(br); err != nil {
			return err
		}
	}
}
