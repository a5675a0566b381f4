package recompress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
)

// Identify names, for people, the compressor that probably made a blob
// no recipe reproduces: from the gzip header (XFL says fastest or best,
// OS the system, a stored name the GNU gzip/pigz default), the number of
// gzip members, and the zstd frame header. It is a guess (nothing here
// is replayed) and reads at most the blob once; "unknown deflate" when
// nothing distinguishes it.
func Identify(r io.Reader) string {
	sc := &syncScanner{r: r}
	br := bufio.NewReaderSize(sc, 64<<10)
	magic, _ := br.Peek(4)
	switch {
	case bytes.Equal(magic, zstdMagic):
		return identifyZstd(br)
	case bytes.HasPrefix(magic, gzipMagic):
		return identifyGzip(br, sc)
	case bytes.HasPrefix(magic, xzMagic):
		return "xz"
	case bytes.HasPrefix(magic, bzip2Magic):
		return "bzip2"
	}
	return "uncompressed"
}

func identifyGzip(br *bufio.Reader, sc *syncScanner) string {
	hdr, _ := br.Peek(10)
	if len(hdr) < 10 || hdr[2] != 8 {
		return "unknown gzip (not deflate)"
	}
	flg, xfl, osb := hdr[3], hdr[8], hdr[9]
	mtime := binary.LittleEndian.Uint32(hdr[4:8])
	level := ""
	switch xfl {
	case 2:
		level = " at its best level (-9 or above)"
	case 4:
		level = " at its fastest level (-1)"
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return "unknown deflate (bad gzip header)"
	}
	zr.Multistream(false)
	members := 0
	for {
		if _, err := io.Copy(io.Discard, zr); err != nil {
			return "unknown deflate (corrupt stream)"
		}
		members++
		if err := zr.Reset(br); err != nil {
			break
		}
		zr.Multistream(false)
	}
	var family string
	switch {
	case sc.syncs >= 2:
		// pigz ends every 128 KiB block with an empty stored block, a
		// byte-aligned 00 00 ff ff; one-stream compressors rarely do.
		family = "pigz (sync-flushed blocks)"
	case osb == 255 && mtime != 0:
		family = "Python's gzip module (zlib deflate)"
	case osb == 255:
		family = "libdeflate-gzip or a library writing no OS byte"
	case osb == 3 && flg&0x08 != 0:
		family = "GNU gzip (stored file name)"
	case osb == 3 && mtime != 0:
		family = "GNU gzip"
	case osb == 3:
		family = "GNU gzip -n, zlib (gzip wrapper), or zopfli"
	case osb == 0:
		family = "deflate from a FAT/Windows gzip"
	default:
		family = fmt.Sprintf("unknown deflate (OS byte %d)", osb)
	}
	s := family + level
	if members > 1 {
		s += fmt.Sprintf(", %d gzip members", members)
	}
	return s
}

func identifyZstd(br *bufio.Reader) string {
	h, _ := br.Peek(6)
	if len(h) < 5 {
		return "zstd (truncated)"
	}
	fhd := h[4]
	s := "zstd not made by klauspost's encoder (the zstd CLI or libzstd)"
	if fhd&0x04 != 0 {
		s += ", with checksums"
	}
	if fhd&0x20 == 0 && len(h) >= 6 {
		// Window descriptor: exponent and mantissa (RFC 8878 3.1.1.1.2).
		exp := uint(h[5]>>3) + 10
		w := uint64(1)<<exp + (uint64(1)<<exp)/8*uint64(h[5]&7)
		s += fmt.Sprintf(", %d KiB window", w>>10)
	}
	return s
}

// syncScanner counts byte-aligned 00 00 ff ff sequences (empty stored
// blocks of a sync flush) in what passes.
type syncScanner struct {
	r     io.Reader
	last  [3]byte
	syncs int
}

func (s *syncScanner) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	b := append(s.last[:], p[:n]...)
	s.syncs += bytes.Count(b, []byte{0, 0, 0xff, 0xff})
	if len(b) >= 3 {
		copy(s.last[:], b[len(b)-3:])
	}
	return n, err
}
