package tarpatch

// The edit form (format 4) of a small layer's patch: the new tar as an
// edit of the sources' tar entries. An entry the new tar keeps byte for
// byte costs a COPY of a run of old entries; a changed file whose header
// differs from its old one only in its size (and so its checksum) costs
// its size change, its header being the old one rebuilt; every other byte
// (changed content, other headers, new entries, the trailer) travels in
// one zstd frame whose dictionary is the sources and then the old content
// of the edited entries, in the order they are edited (nearest, so
// cheapest to refer to). Against the whole form (one frame of the whole
// tar against the whole sources) it saves what zstd pays for each changed
// header (its size and checksum digits: two matches and their literals)
// and for the unchanged stretches; its frame holds only what changed, so
// it is often one 128 KiB block, with one set of entropy tables, where
// the whole form's frame has a block per 128 KiB of layer.
//
//	edit  = magic "DFHTAR4E" uvarint(opsLen) ops frame
//	ops   = { op } END                           (opsLen bytes)
//	op    = COPY  varint(jump) uvarint(n)         n old entries verbatim
//	      | EDIT  varint(jump) varint(change)     old header resized, content
//	      | EDITH varint(jump) varint(change)     512 header bytes, content
//	      | RAW   uvarint(n)                      n bytes
//	END   = 0x00 uvarint(z) uvarint(n)            z zero bytes, n bytes
//	COPY = 0x01  EDIT = 0x02  EDITH = 0x03  RAW = 0x04
//	frame = one zstd frame without its 4-byte magic number
//
// Old entries are the sources' tar entries (walkTar), numbered across the
// sources in order; an op names entry cursor+jump, and the cursor moves
// past the entries it used. An EDIT or EDITH's content size is its old
// entry's plus change; the content is padded with zeros to a 512-byte
// block. Every byte an op takes, other than COPY's, EDIT's header and the
// zeros, is the frame's next, and the frame must end with END's. The
// frame's dictionary is the sources' bytes followed by, for each EDIT and
// EDITH in order, its old entry's content (EDITH: header and content), as
// long as the dictionary stays within twice SmallLayer. Only small
// sources (isSmall) are read this way.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
)

var editMagic = []byte("DFHTAR4E")

// zstdMagic is the zstd frame magic number, which the edit form leaves out.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

const (
	eopEnd   = 0
	eopCopy  = 1
	eopEdit  = 2
	eopEditH = 3
	eopRaw   = 4
)

// maxEditOps bounds the op list of an edit-form patch.
const maxEditOps = 1 << 22

// tarEnt is one tar entry: its header block at off, content size bytes
// after it, padded to a block; end is where the next entry begins.
type tarEnt struct{ off, size, end int64 }

// walkTar lists the entries of the tar b from its start, stopping at a
// zero block, a header whose size field is not a number, or an entry that
// does not fit; tail is where it stopped. It reads nothing but the size
// field, so any bytes walk the same way on both sides.
func walkTar(b []byte) (ents []tarEnt, tail int64) {
	var off int64
	n := int64(len(b))
	for off+blockSize <= n {
		h := b[off : off+blockSize]
		if isZeroBlock(h) {
			break
		}
		size, ok := parseSize(h[124:136])
		if !ok || size > n {
			break
		}
		end := off + blockSize + (size+blockSize-1)/blockSize*blockSize
		if end > n {
			break
		}
		ents = append(ents, tarEnt{off, size, end})
		off = end
	}
	return ents, off
}

const blockSize = 512

func isZeroBlock(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parseSize reads a tar size field: octal digits between optional spaces
// and NULs, or base-256 (high bit set) up to 2^40.
func parseSize(f []byte) (int64, bool) {
	if f[0]&0x80 != 0 {
		if f[0] != 0x80 {
			return 0, false
		}
		var v int64
		for _, c := range f[1:] {
			if v >= 1<<32 {
				return 0, false
			}
			v = v<<8 | int64(c)
		}
		return v, true
	}
	f = bytes.Trim(f, " \x00")
	if len(f) == 0 || len(f) > 11 {
		return 0, false
	}
	var v int64
	for _, c := range f {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v<<3 | int64(c-'0')
	}
	return v, true
}

// resized is hdr with its size field set to size the way Go's and GNU's
// tar write it (11 octal digits and a NUL) and its checksum recomputed
// (6 octal digits, NUL, space); ok is false for a size that needs more.
func resized(hdr []byte, size int64) ([]byte, bool) {
	if size < 0 || size >= 1<<33 {
		return nil, false
	}
	h := append([]byte(nil), hdr[:blockSize]...)
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[148:156], "        ")
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h, true
}

// oldEntries reads the small sources whole (streamDict) and walks each.
func oldEntries(sources []Source) ([]byte, []tarEnt, error) {
	all, err := streamDict(sources)
	if err != nil {
		return nil, nil, err
	}
	var ents []tarEnt
	var base int64
	for _, s := range sources {
		e, _ := walkTar(all[base : base+s.Size()])
		for _, x := range e {
			ents = append(ents, tarEnt{base + x.off, x.size, base + x.end})
		}
		base += s.Size()
	}
	return all, ents, nil
}

// editDict appends an edited old entry's content to dict (EDITH: its
// header and content), if the dictionary stays within twice SmallLayer.
func editDict(dict, old []byte, e tarEnt, op byte) []byte {
	from := e.off + blockSize
	if op == eopEditH {
		from = e.off
	}
	to := e.off + blockSize + e.size
	if int64(len(dict))+to-from > 2*SmallLayer {
		return dict
	}
	return append(dict, old[from:to]...)
}

// entryKey is what pairs a new entry with an old one: its name and prefix
// fields, exactly or once version numbers are ignored.
func entryKey(h []byte, loose bool) string {
	name := string(bytes.TrimRight(h[345:500], "\x00")) + "/" + string(bytes.TrimRight(h[0:100], "\x00"))
	if loose {
		return "~" + normalize(name)
	}
	return name
}

// encodeEdit encodes the small tar nt in the edit form.
func encodeEdit(nt []byte, sources []Source, level zstd.EncoderLevel) ([]byte, error) {
	old, oents, err := oldEntries(sources)
	if err != nil {
		return nil, err
	}
	byKey := map[string][]int{}
	for i, e := range oents {
		h := old[e.off : e.off+blockSize]
		for _, loose := range []bool{false, true} {
			k := entryKey(h, loose)
			byKey[k] = append(byKey[k], i)
		}
	}
	// pick is the old entry a new one is edited from: the first with its
	// key at or after the cursor, else the first.
	pick := func(h []byte, cur int) (int, bool) {
		for _, loose := range []bool{false, true} {
			c := byKey[entryKey(h, loose)]
			if len(c) == 0 {
				continue
			}
			// c is in ascending order.
			if i := sort.SearchInts(c, cur); i < len(c) {
				return c[i], true
			}
			return c[0], true
		}
		return 0, false
	}
	nents, tail := walkTar(nt)
	var ops, stream []byte
	dict := append([]byte(nil), old...)
	cur := 0
	copyAt, copyN := 0, 0
	rawFrom, rawTo := int64(0), int64(0)
	flush := func() {
		if copyN > 0 {
			ops = append(ops, eopCopy)
			ops = binary.AppendVarint(ops, int64(copyAt-cur))
			ops = binary.AppendUvarint(ops, uint64(copyN))
			cur = copyAt + copyN
			copyN = 0
		}
		if rawTo > rawFrom {
			ops = append(ops, eopRaw)
			ops = binary.AppendUvarint(ops, uint64(rawTo-rawFrom))
			stream = append(stream, nt[rawFrom:rawTo]...)
			rawFrom = rawTo
		}
	}
	// at is the cursor once the pending COPY is written.
	at := func() int {
		if copyN > 0 {
			return copyAt + copyN
		}
		return cur
	}
	for _, e := range nents {
		b := nt[e.off:e.end]
		h := b[:blockSize]
		// The next old entry, or the one of the same name, unchanged.
		j, ok := at(), false
		if j < len(oents) && bytes.Equal(old[oents[j].off:oents[j].end], b) {
			ok = true
		} else if k, found := pick(h, at()); found && bytes.Equal(old[oents[k].off:oents[k].end], b) {
			j, ok = k, true
		}
		if ok {
			if rawTo > rawFrom || copyN > 0 && j != copyAt+copyN {
				flush()
			}
			if copyN == 0 {
				copyAt = j
			}
			copyN++
			continue
		}
		k, found := pick(h, at())
		if !found || !isZeroBlock(b[blockSize+e.size:]) {
			if rawTo == rawFrom {
				flush()
				rawFrom = e.off
			}
			rawTo = e.end
			continue
		}
		flush()
		op := byte(eopEditH)
		if rh, ok := resized(old[oents[k].off:], e.size); ok && bytes.Equal(rh, h) {
			op = eopEdit
		}
		ops = append(ops, op)
		ops = binary.AppendVarint(ops, int64(k-cur))
		ops = binary.AppendVarint(ops, e.size-oents[k].size)
		cur = k + 1
		if op == eopEditH {
			stream = append(stream, h...)
		}
		stream = append(stream, b[blockSize:blockSize+e.size]...)
		dict = editDict(dict, old, oents[k], op)
	}
	flush()
	zeros := tail
	for zeros < int64(len(nt)) && nt[zeros] == 0 {
		zeros++
	}
	ops = append(ops, eopEnd)
	ops = binary.AppendUvarint(ops, uint64(zeros-tail))
	ops = binary.AppendUvarint(ops, uint64(int64(len(nt))-zeros))
	stream = append(stream, nt[zeros:]...)

	if level == 0 {
		level = zstd.SpeedBestCompression
	}
	// The window spans the dictionary and the stream, no more: a small
	// layer's encoder then holds a few MiB, not streamWindow.
	win := 1 << 20
	for win < len(dict)+len(stream) && win < streamWindow {
		win <<= 1
	}
	opts := []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(win), zstd.WithEncoderCRC(false)}
	if len(dict) > 0 {
		opts = append(opts, zstd.WithEncoderDictRaw(0, dict))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err)
	}
	defer enc.Close()
	frame := enc.EncodeAll(stream, nil)
	if !bytes.HasPrefix(frame, zstdMagic) {
		return nil, fault.Errorf(fault.Internal, "tarpatch: zstd wrote no frame magic")
	}
	out := append([]byte(nil), editMagic...)
	out = binary.AppendUvarint(out, uint64(len(ops)))
	out = append(out, ops...)
	return append(out, frame[len(zstdMagic):]...), nil
}
