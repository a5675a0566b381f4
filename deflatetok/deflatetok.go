// Package deflatetok holds the token form of gzip streams: a lossless,
// byte-aligned rewriting of a gzip blob's deflate bitstream (RFC 1951,
// 1952) into its parse — every member's header bytes, each block's type,
// its Huffman code lengths exactly as coded, its literal runs and matches
// as coded (symbol and extra bits), padding bits and trailers — which,
// with the blob's content (its uncompressed tar), rebuilds the blob bit
// for bit, by construction, whatever encoder made it (GNU gzip, pigz,
// zlib, libdeflate, zopfli, …).
//
// What it is for: a layer's content is patched as a tar (tarpatch, which
// costs what the content change costs), and its parse is patched against
// the old parse: the parse of unchanged content comes out the same once
// the encoder's 32 KiB window has passed a change, so what the parse
// patch pays is the blocks and tokens around changes. The content does
// not appear in the form at all. (The idea of Android's Puffin, with the
// content split out; built here from the RFCs.)
//
// # Format
//
//	form    = magic "DFHDTOK2" { 0x01 member } 0x00 uvarint(n) n*byte(tail)
//	member  = uvarint(hlen) hlen*byte(gzip header) { block } byte(pad) 8*byte(trailer)
//	block   = byte(bfinal | btype<<1) body
//	stored  = byte(pad) uvarint(len)                       (btype 0; len content bytes)
//	fixed   = tokens                                       (btype 1)
//	dynamic = byte(hlit-257) byte(hdist-1) byte(hclen-4)   (btype 2)
//	          hclen*byte(code length code lengths)
//	          { byte(sym) [byte(repeat) when sym ≥ 16] }  until hlit+hdist lengths
//	          tokens
//	tokens  = { 0x01 uvarint(n)                                  (n literals of content)
//	          | 0x02 byte(lsym-257) byte(lextra) byte(dsym) byte(dextra lo) byte(dextra hi) }
//	          0x00 (end of block)
//
// pad is the value of the bits that fill a byte before a stored block or
// after a member's last block; tail is whatever follows the last member.
// Literals and stored bytes are read from the content in order, and a
// match skips the content bytes it copies. Decode refuses what it cannot
// rewrite exactly (a reserved block type, an over-subscribed code, a
// symbol with no code, LEN/NLEN mismatch); Encode refuses malformed forms
// and content that does not fit (a literal with no code, content shorter
// or longer than the form uses) and never writes past
// EncodeOptions.MaxOutput. Both run in bounded memory.
package deflatetok

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/diffah/diffah/fault"
)

const (
	magic       = "DFHDTOK2" // content in the tar
	magicInline = "DFHDTOK1" // content inline (DecodeInline)
)

const (
	tagEnd    = 0x00
	tagMember = 0x01
	tokEOB    = 0x00
	tokLits   = 0x01
	tokMatch  = 0x02
	// maxLitRun bounds one literal run of the form.
	maxLitRun = 1 << 16
	// maxHeader bounds a gzip member header (name, comment, extra).
	maxHeader = 1 << 20
	// maxTail bounds the bytes after the last member.
	maxTail = 1 << 20
)

// ErrNotGzip says the blob is not a gzip stream this package can rewrite.
var ErrNotGzip = errors.New("not a gzip stream")

var errCorrupt = errors.New("corrupt token form")

func corrupt(format string, a ...any) error {
	return fault.Errorf(fault.Integrity, "deflatetok: %w: %s", errCorrupt, fmt.Sprintf(format, a...))
}

// Length and distance bases and extra bits (RFC 1951 3.2.5).
var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]uint32{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtr = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder  = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// huffman is a canonical code built from code lengths: decoding by count
// per length (as RFC 1951 3.2.2 describes the canonical code), encoding
// by the per-symbol code.
type huffman struct {
	count  [16]uint16
	symbol []uint16 // symbols ordered by code
	code   []uint16 // bit-reversed code per symbol (for LSB-first output)
	length []uint8
	// fast maps the next fastBits input bits to symbol<<4 | length, for
	// codes of at most fastBits bits (0: longer, decoded bit by bit).
	fast [1 << fastBits]uint16
}

// fastBits is the width of the decoder's lookup table.
const fastBits = 9

// build makes the code for lengths; it refuses an over-subscribed set.
// An incomplete set is allowed (deflate permits one for a single
// distance code, and the bits it uses are rewritten as they came).
func (h *huffman) build(lengths []uint8) error {
	h.count = [16]uint16{}
	for _, l := range lengths {
		if l > 15 {
			return errors.New("code length over 15")
		}
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return errors.New("over-subscribed Huffman code")
		}
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = h.symbol[:0]
	h.symbol = append(h.symbol, make([]uint16, len(lengths))...)
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	// Codes (RFC 1951 3.2.2 step 2 and 3), stored bit-reversed.
	var next [16]uint16
	code := uint16(0)
	for l := 1; l < 16; l++ {
		code = (code + h.count[l-1]) << 1
		next[l] = code
	}
	h.code = append(h.code[:0], make([]uint16, len(lengths))...)
	h.length = append(h.length[:0], lengths...)
	for s, l := range lengths {
		if l != 0 {
			c := next[l]
			next[l]++
			var r uint16
			for i := uint8(0); i < l; i++ {
				r = r<<1 | c&1
				c >>= 1
			}
			h.code[s] = r
		}
	}
	h.fast = [1 << fastBits]uint16{}
	for s, l := range lengths {
		if l != 0 && l <= fastBits {
			for k := 0; k < 1<<(fastBits-l); k++ {
				h.fast[int(h.code[s])|k<<l] = uint16(s)<<4 | uint16(l)
			}
		}
	}
	return nil
}

var fixedLit, fixedDist huffman

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.build(l[:])
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	fixedDist.build(d[:])
}

// bitReader reads deflate's LSB-first bits.
type bitReader struct {
	r     *bufio.Reader
	bits  uint64
	nbits uint
	err   error
	// pos counts the bytes taken from r since the member's deflate data
	// began (kept by need and by the stored-block reader).
	pos int64
}

func (b *bitReader) need(n uint) bool {
	for b.nbits < n {
		c, err := b.r.ReadByte()
		if err != nil {
			if b.err == nil {
				b.err = io.ErrUnexpectedEOF
			}
			return false
		}
		b.bits |= uint64(c) << b.nbits
		b.nbits += 8
		b.pos++
	}
	return true
}

func (b *bitReader) read(n uint) uint32 {
	if n == 0 || !b.need(n) {
		return 0
	}
	v := uint32(b.bits & (1<<n - 1))
	b.bits >>= n
	b.nbits -= n
	return v
}

// fill reads whole bytes until n bits are buffered, short of that at
// the end of the input (no error: the caller falls back to need).
func (b *bitReader) fill(n uint) bool {
	for b.nbits < n {
		c, err := b.r.ReadByte()
		if err != nil {
			return false
		}
		b.bits |= uint64(c) << b.nbits
		b.nbits += 8
		b.pos++
	}
	return true
}

// readFull reads whole bytes once aligned: first the byte the lookahead
// of decode may hold (at most one after align), then from r.
func (b *bitReader) readFull(p []byte) error {
	for len(p) > 0 && b.nbits >= 8 {
		p[0] = byte(b.bits)
		b.bits >>= 8
		b.nbits -= 8
		p = p[1:]
	}
	n, err := io.ReadFull(b.r, p)
	b.pos += int64(n)
	return err
}

// decode reads one symbol of h: from the lookup table when the code is
// short, else bit by bit (canonical decoding).
func (b *bitReader) decode(h *huffman) (int, error) {
	if b.fill(fastBits) {
		if e := h.fast[b.bits&(1<<fastBits-1)]; e != 0 {
			l := uint(e & 15)
			b.bits >>= l
			b.nbits -= l
			return int(e >> 4), nil
		}
	}
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		code |= int(b.read(1))
		if b.err != nil {
			return 0, b.err
		}
		count := int(h.count[l])
		if code-first < count {
			return int(h.symbol[index+code-first]), nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

// align drops the bits left in the current byte and returns them.
func (b *bitReader) align() byte {
	n := b.nbits % 8
	return byte(b.read(n))
}

// bitWriter writes deflate's LSB-first bits, a 64 KiB buffer at a time.
type bitWriter struct {
	w     io.Writer
	buf   []byte
	bits  uint64
	nbits uint
	err   error
}

func (b *bitWriter) write(v uint32, n uint) {
	b.bits |= uint64(v) << b.nbits
	b.nbits += n
	if b.nbits >= 32 {
		b.buf = append(b.buf, byte(b.bits), byte(b.bits>>8), byte(b.bits>>16), byte(b.bits>>24))
		b.bits >>= 32
		b.nbits -= 32
		if len(b.buf) >= 64<<10 {
			b.flush()
		}
	}
}

// flush writes the whole bytes buffered (the bits of a partial byte stay).
func (b *bitWriter) flush() {
	for b.nbits >= 8 {
		b.buf = append(b.buf, byte(b.bits))
		b.bits >>= 8
		b.nbits -= 8
	}
	if len(b.buf) > 0 && b.err == nil {
		_, b.err = b.w.Write(b.buf)
	}
	b.buf = b.buf[:0]
}

// flushByte completes the current byte with the pad bits recorded.
func (b *bitWriter) flushByte(pad byte) {
	if r := b.nbits % 8; r > 0 {
		b.write(uint32(pad), 8-r)
	}
}

// aligned reports whether the output is at a byte boundary.
func (b *bitWriter) aligned() bool { return b.nbits%8 == 0 }

// partial is the number of bits written into the current byte.
func (b *bitWriter) partial() uint { return b.nbits % 8 }

// appendUvarint writes v in w's own buffer (a stack buffer would escape
// through Write: one allocation per number).
func appendUvarint(w *bufio.Writer, v uint64) {
	w.Write(binary.AppendUvarint(w.AvailableBuffer(), v))
}
