package tarpatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// The MATCH encoding diffs a file against its old version the way a
// delta tool does, and compresses what is left:
//
//   - the new file is cut into literal runs and copies from the old file,
//     found with a hash index of the old file (every 4th position) and a
//     preference for continuing at the previous copy's offset, so that an
//     edit between two copies costs no offset at all;
//   - literal lengths, copy lengths and copy offsets (relative to where
//     the previous copy ended, less the literal run) go in three streams,
//     each zstd-compressed on its own: each is regular in its own way;
//   - the literals are zstd-compressed with the old file as a raw
//     dictionary, so new code that resembles old code elsewhere still
//     compresses.
//
// On text (JavaScript, configuration) this beats compressing the whole
// file against the old one with klauspost's zstd, whose match search is
// shallower than zstd's optimal parser; on machine code the plain DELTA
// usually wins. The encoder keeps whichever is smaller.
//
//	MATCH = 0x04 uvarint(nranges) { range } uvarint(outLen) section(ll) section(ml) section(of) section(lits)
//	range = uvarint(src) uvarint(off) uvarint(len)   (the dictionary is their concatenation)
//	section = uvarint(n) n*byte   (one zstd frame)

const (
	opMatch   = 4
	opMatchIn = 5
	// litShare: a MATCH leaving more than 1/litShare of the data as
	// literals is not finished; DELTA is used.
	litShare    = 4
	matchWindow = 16
	matchStep   = 4
	matchMin    = 64
	matchBits   = 22
)

func matchHash(b []byte) uint32 {
	return uint32((binary.LittleEndian.Uint64(b[:8])*0x9E3779B185EBCA87 ^ binary.LittleEndian.Uint64(b[8:16])*0xC2B2AE3D27D4EB4F) >> (64 - matchBits))
}

// matchStreams computes the copy/literal split of nw against old.
func matchStreams(old, nw []byte) (ll, ml, of, lits []byte) {
	bits := matchBits
	for bits > 10 && (1<<bits)/2 > len(old)/matchStep {
		bits--
	}
	mask := uint32(1<<bits - 1)
	table := make([]int32, 1<<bits)
	for i := range table {
		table[i] = -1
	}
	for p := 0; p+matchWindow <= len(old); p += matchStep {
		table[matchHash(old[p:])>>(matchBits-bits)&mask] = int32(p)
	}
	litStart, lastOld, i := 0, 0, 0
	for i+matchWindow <= len(nw) {
		p := -1
		if rp := lastOld + (i - litStart); rp >= 0 && rp+matchWindow <= len(old) && bytes.Equal(old[rp:rp+matchWindow], nw[i:i+matchWindow]) {
			p = rp
		} else if t := int(table[matchHash(nw[i:])>>(matchBits-bits)&mask]); t >= 0 && bytes.Equal(old[t:t+matchWindow], nw[i:i+matchWindow]) {
			p = t
		}
		if p < 0 {
			i++
			continue
		}
		s, o := i, p
		for s > litStart && o > 0 && nw[s-1] == old[o-1] {
			s--
			o--
		}
		e, q := i+matchWindow, p+matchWindow
		for e < len(nw) && q < len(old) && nw[e] == old[q] {
			e++
			q++
		}
		if e-s < matchMin {
			i++
			continue
		}
		lits = append(lits, nw[litStart:s]...)
		ll = binary.AppendUvarint(ll, uint64(s-litStart))
		ml = binary.AppendUvarint(ml, uint64(e-s))
		of = binary.AppendVarint(of, int64(o-lastOld)-int64(s-litStart))
		lastOld, litStart, i = q, e, e
	}
	lits = append(lits, nw[litStart:]...)
	ll = binary.AppendUvarint(ll, uint64(len(nw)-litStart))
	return ll, ml, of, lits
}

// matchOp encodes data against the dictionary as MATCH or MATCHIN,
// whichever costs less, and returns the op with its estimated cost in the
// patch. MATCHIN carries the streams bare inside the patch's shared zstd
// stream: a small edit then costs a few bytes instead of four zstd frames
// with their own headers and entropy tables. Its cost is estimated by
// compressing it alone, which overstates what the shared stream charges.
func matchOp(ranges []loc, dict, data []byte, enc *encoders) ([]byte, int, error) {
	ll, ml, of, lits := matchStreams(dict, data)
	if len(lits) > len(data)/litShare {
		// Mostly literals (machine code, where copies are short and
		// shifted): DELTA wins there, and compressing the literals against
		// the dictionary would cost as much as DELTA itself.
		return nil, 0, nil
	}
	head := enc.appendRanges(nil, ranges)
	head = binary.AppendUvarint(head, uint64(len(data)))

	framed := append([]byte{opMatch}, head...)
	for _, sec := range [][]byte{ll, ml, of} {
		z := enc.plain.EncodeAll(sec, nil)
		framed = binary.AppendUvarint(framed, uint64(len(z)))
		framed = append(framed, z...)
	}
	z, err := enc.withDict(dict, lits)
	if err != nil {
		return nil, 0, err
	}
	framed = binary.AppendUvarint(framed, uint64(len(z)))
	framed = append(framed, z...)

	// Bare streams are worth it only while they are small: large literal
	// runs compress better against the old file, which MATCH's literal
	// section uses as its dictionary.
	if bare := len(ll) + len(ml) + len(of) + len(lits); bare < len(framed) {
		in := append([]byte{opMatchIn}, head...)
		for _, sec := range [][]byte{ll, ml, of, lits} {
			in = binary.AppendUvarint(in, uint64(len(sec)))
			in = append(in, sec...)
		}
		if cost := min(len(in), plainSize(in, enc)); cost < len(framed) {
			return in, cost, nil
		}
	}
	return framed, len(framed), nil
}

// match decodes a MATCH op, or with inline set a MATCHIN op (the op byte
// already read).
func (d *decoder) match(inline bool) error {
	dict, err := d.dictRanges()
	if err != nil {
		return err
	}
	outLen, err := d.uvarint("match output length", MaxOut)
	if err != nil {
		return err
	}
	if err := d.grow(outLen); err != nil {
		return err
	}
	// Every copy is at least matchMin bytes (the encoder never makes a
	// shorter one, and the loop below refuses one), so an op has at most
	// outLen/matchMin copies, each a varint (at most 10 bytes) in each
	// of the three number streams; literals are at most outLen bytes.
	// These are the streams' bounds, checked as they decode: a section
	// decoding to more fails when it reaches its bound
	// (DecodeAllCapLimit), having allocated no more than that.
	nums := matchSectionLen(outLen)
	limits := [4]uint64{nums, nums, nums, outLen}
	var secs [4][]byte
	for i := range secs {
		max := payloadMax(limits[i])
		if inline {
			max = limits[i]
		}
		zl, err := d.uvarint("match section length", max)
		if err != nil {
			return err
		}
		if inline {
			d.secs[i] = reuse(d.secs[i], zl)
			secs[i] = d.secs[i]
			if _, err := readFull(d, secs[i]); err != nil {
				return fmt.Errorf("match section %d: %w", i, err)
			}
			continue
		}
		d.enc = reuse(d.enc, zl)
		z := d.enc
		if _, err := readFull(d, z); err != nil {
			return fmt.Errorf("match section %d: %w", i, err)
		}
		opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecodeAllCapLimit(true)}
		if i == 3 && len(dict) > 0 {
			opts = append(opts, zstd.WithDecoderDictRaw(dictID, dict))
		}
		dec, err := zstd.NewReader(nil, opts...)
		if err != nil {
			return err
		}
		if uint64(cap(d.secs[i])) < limits[i] {
			d.secs[i] = make([]byte, 0, limits[i])
		}
		secs[i], err = dec.DecodeAll(z, d.secs[i][:0:limits[i]])
		dec.Close()
		if err != nil {
			return fmt.Errorf("match section %d: %w (more than its bound of %d bytes?)", i, err, limits[i])
		}
	}
	if uint64(cap(d.buf)) < outLen {
		d.buf = make([]byte, 0, outLen)
	}
	out := d.buf[:0]
	ll, ml, of, lits := bytes.NewReader(secs[0]), bytes.NewReader(secs[1]), bytes.NewReader(secs[2]), secs[3]
	lastOld := int64(0)
	for {
		l, err := binary.ReadUvarint(ll)
		if err != nil {
			return errors.New("match: literal lengths end early")
		}
		if l > uint64(len(lits)) || uint64(len(out))+l > outLen {
			return errors.New("match: literal run out of bounds")
		}
		out = append(out, lits[:l]...)
		lits = lits[l:]
		if ll.Len() == 0 {
			break
		}
		m, err := binary.ReadUvarint(ml)
		if err != nil {
			return errors.New("match: copy lengths end early")
		}
		delta, err := binary.ReadVarint(of)
		if err != nil {
			return errors.New("match: offsets end early")
		}
		o := lastOld + delta + int64(l)
		if m < matchMin {
			return fmt.Errorf("match: copy of %d bytes, shorter than the %d the encoder makes", m, matchMin)
		}
		if o < 0 || m > uint64(len(dict)) || o > int64(len(dict))-int64(m) || uint64(len(out))+m > outLen {
			return errors.New("match: copy out of bounds")
		}
		out = append(out, dict[o:o+int64(m)]...)
		lastOld = o + int64(m)
	}
	if uint64(len(out)) != outLen || len(lits) != 0 || ml.Len() != 0 || of.Len() != 0 {
		return fmt.Errorf("match decoded to %d bytes, expected %d (or streams left over)", len(out), outLen)
	}
	return d.write(out)
}

// matchSectionMax bounds a MATCH number stream of the largest op.
const matchSectionMax = 10 * (MaxOut/matchMin + 1)

// matchSectionLen bounds a MATCH number stream for an op of outLen bytes:
// one varint per copy, and at most outLen/matchMin copies (plus the final
// literal run).
func matchSectionLen(outLen uint64) uint64 { return 10 * (outLen/matchMin + 1) }

func readFull(d *decoder, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := d.ops.Read(b[n:])
		n += m
		if err != nil {
			if n == len(b) {
				return n, nil
			}
			return n, err
		}
	}
	return n, nil
}
