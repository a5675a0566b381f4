package tarpatch

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"runtime"
	"sort"

	kzlib "github.com/klauspost/compress/zlib"
	"golang.org/x/sync/errgroup"
)

// The XADIFF encoding (format diffah-tar/2) is ADIFF on expanded ELF
// files. Go's linker (and GNU ld with --compress-debug-sections) stores
// DWARF sections zlib-compressed (SHF_COMPRESSED); a rebuild changes them
// throughout, so in compressed form nothing matches and they cost their
// full size — on a Go program rebuild, most of the patch. XADIFF inflates
// the compressed sections of the old file and of the new one, diffs the
// expanded forms, and on decoding deflates the new sections again. The
// encoder uses a section only when compress/zlib at the recorded level
// gives back its exact bytes; the decoder checks each recompressed length
// and the caller checks the layer's diffID, so a Go whose compress/flate
// wrote other bytes would fail loudly (an integrity error), never
// silently.
//
//	XADIFF = 0x07 ranges uvarint(outLen)
//	         uvarint(nd) { uvarint(off) uvarint(clen) }                     (zlib streams in the dictionary)
//	         uvarint(nn) { uvarint(off) uvarint(clen) uvarint(ilen) uvarint(level) } (zlib streams in the output)
//	         uvarint(expLen) section(ctrl) section(diff) section(extra)
//
// Offsets are ascending and the streams do not overlap; dictionary
// streams are inflated in place to give the expanded dictionary, output
// streams are at output offsets and inflate to ilen bytes; level 0 means
// zlib.DefaultCompression. The ADIFF body rebuilds the expanded output
// (expLen bytes) against the expanded dictionary; its extra stream's zstd
// dictionary is the last xdictMax bytes of the expanded dictionary.

const opXADiff = 7

// xdictMax bounds the extra stream's dictionary (and the encoder keeps the
// extra bytes within the rest of dictWindow).
const xdictMax = dictWindow / 2

// xadiffEnabled lets a measurement switch XADIFF off to compare.
var xadiffEnabled = true

// zpiece is one zlib stream inside a file: compressed bytes at off.
type zpiece struct {
	off, clen, ilen int64
	level           int
}

// maxExpand bounds an expanded dictionary or output (the decoder refuses
// more; the encoder does not expand past it).
const maxExpand = dictWindow

// elfZlibSections lists the zlib streams of b's SHF_COMPRESSED sections
// (ELF64 little-endian), sorted, non-overlapping. It never fails: what it
// cannot parse it leaves out.
func elfZlibSections(b []byte) []zpiece {
	if len(b) < 64 || !bytes.HasPrefix(b, []byte("\x7fELF\x02\x01")) {
		return nil
	}
	shoff := binary.LittleEndian.Uint64(b[0x28:])
	shentsize := uint64(binary.LittleEndian.Uint16(b[0x3A:]))
	shnum := uint64(binary.LittleEndian.Uint16(b[0x3C:]))
	if shentsize < 64 || shoff > uint64(len(b)) || shnum*shentsize > uint64(len(b))-shoff {
		return nil
	}
	var out []zpiece
	for i := uint64(0); i < shnum; i++ {
		h := b[shoff+i*shentsize:]
		flags := binary.LittleEndian.Uint64(h[8:])
		off := binary.LittleEndian.Uint64(h[24:])
		size := binary.LittleEndian.Uint64(h[32:])
		typ := binary.LittleEndian.Uint32(h[4:])
		if flags&0x800 == 0 || typ == 8 /* NOBITS */ || size < 24+6 || off > uint64(len(b)) || size > uint64(len(b))-off {
			continue
		}
		if binary.LittleEndian.Uint32(b[off:]) != 1 { // ELFCOMPRESS_ZLIB
			continue
		}
		out = append(out, zpiece{off: int64(off) + 24, clen: int64(size) - 24})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].off < out[j].off })
	var clean []zpiece
	end := int64(0)
	for _, p := range out {
		if p.off >= end {
			clean = append(clean, p)
			end = p.off + p.clen
		}
	}
	return clean
}

// inflate returns the content of one zlib stream, at most max bytes.
// Inflating is exact with any correct inflater: klauspost's is faster.
func inflate(z []byte, max int64) ([]byte, bool) {
	zr, err := kzlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, false
	}
	defer zr.Close()
	var out bytes.Buffer
	if _, err := io.Copy(&out, io.LimitReader(zr, max+1)); err != nil || int64(out.Len()) > max {
		return nil, false
	}
	return out.Bytes(), true
}

// each runs f(0..n-1) on up to GOMAXPROCS goroutines.
func each(n int, f func(i int)) {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range n {
		g.Go(func() error { f(i); return nil })
	}
	g.Wait()
}

// deflate compresses b as compress/zlib does at level (0: default).
func deflate(b []byte, level int) []byte {
	l := level
	if l == 0 {
		l = zlib.DefaultCompression
	}
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, l)
	if err != nil {
		return nil
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// zlibLevel returns the level whose output from compress/zlib is exactly z
// (content being what z inflates to), or false.
func zlibLevel(z, content []byte) (int, bool) {
	if len(z) < 2 {
		return 0, false
	}
	// The header's FLEVEL names the level class: try the likely ones.
	var try []int
	switch z[1] >> 6 {
	case 0:
		try = []int{1}
	case 2:
		try = []int{0, 6}
	case 3:
		try = []int{9, 7, 8}
	default:
		try = []int{2, 3, 4, 5}
	}
	for _, l := range try {
		if bytes.Equal(deflate(content, l), z) {
			return l, true
		}
	}
	return 0, false
}

// expand returns b with the pieces inflated in place; with verify, only
// pieces compress/zlib reproduces exactly are kept (their ilen and level
// filled in) and returned.
func expand(b []byte, pieces []zpiece, verify bool) ([]byte, []zpiece) {
	var out []byte
	var kept []zpiece
	last := int64(0)
	for _, p := range pieces {
		z := b[p.off : p.off+p.clen]
		content, ok := inflate(z, maxExpand)
		if !ok {
			continue
		}
		if verify {
			l, ok := zlibLevel(z, content)
			if !ok {
				continue
			}
			p.level = l
		}
		if int64(len(out))+p.off-last+int64(len(content)) > maxExpand {
			break
		}
		p.ilen = int64(len(content))
		out = append(out, b[last:p.off]...)
		out = append(out, content...)
		last = p.off + p.clen
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return nil, nil
	}
	if int64(len(out))+int64(len(b))-last > maxExpand {
		return nil, nil
	}
	return append(out, b[last:]...), kept
}

// xadiffOp encodes an ELF file with compressed sections as XADIFF, or
// returns nil when there is nothing to expand. oldAt is where the old
// file starts in dict.
func xadiffOp(ranges []loc, dict, data []byte, oldAt int, enc *encoders) ([]byte, error) {
	expData, np := expand(data, elfZlibSections(data), true)
	if np == nil {
		return nil, nil
	}
	var dp []zpiece
	for _, p := range elfZlibSections(dict[oldAt:]) {
		p.off += int64(oldAt)
		dp = append(dp, p)
	}
	expDict, dp := expand(dict, dp, false)
	if dp == nil {
		expDict = dict
	}
	ctrl, diff, extra := adiffStreams(expDict, expData)
	if len(extra) > dictWindow-xdictMax {
		return nil, nil
	}
	b := appendXADiffHead(enc.appendRanges([]byte{opXADiff}, ranges), uint64(len(data)), dp, np, uint64(len(expData)))
	for _, sec := range [][]byte{ctrl, diff} {
		z := enc.plain.EncodeAll(sec, nil)
		b = binary.AppendUvarint(b, uint64(len(z)))
		b = append(b, z...)
	}
	z, err := enc.withDict(expDict[max(0, len(expDict)-xdictMax):], extra)
	if err != nil {
		return nil, err
	}
	b = binary.AppendUvarint(b, uint64(len(z)))
	return append(b, z...), nil
}

// appendXADiffHead appends an XADIFF op's lengths and stream lists (the
// part between its ranges and its sections).
func appendXADiffHead(b []byte, outLen uint64, dp, np []zpiece, expLen uint64) []byte {
	b = binary.AppendUvarint(b, outLen)
	b = binary.AppendUvarint(b, uint64(len(dp)))
	for _, p := range dp {
		b = binary.AppendUvarint(b, uint64(p.off))
		b = binary.AppendUvarint(b, uint64(p.clen))
	}
	b = binary.AppendUvarint(b, uint64(len(np)))
	for _, p := range np {
		for _, v := range []int64{p.off, p.clen, p.ilen, int64(p.level)} {
			b = binary.AppendUvarint(b, uint64(v))
		}
	}
	return binary.AppendUvarint(b, expLen)
}
