package tarpatch

import (
	"archive/tar"
	"io"
)

// maxHeaderDict bounds the header dictionary.
const maxHeaderDict = 8 << 20

// headerDict collects the raw header blocks (everything between one
// entry's data and the next's: padding, PAX and GNU extension headers,
// the header itself) of every source, in order, up to maxHeaderDict.
// The literal stream, which carries the new tar's headers, is compressed
// against it: a new header differs from its old one in a few bytes, and
// the encoder and the decoder derive the same dictionary from the same
// sources, so it costs nothing in the patch.
func headerDict(sources []Source) []byte {
	var dict []byte
	for _, s := range sources {
		sr := &seekCounter{r: io.NewSectionReader(s, 0, s.Size())}
		tr := tar.NewReader(sr)
		var prevEnd int64
		for len(dict) < maxHeaderDict {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			start := sr.pos
			if start > prevEnd && start-prevEnd <= 64<<10 {
				b := make([]byte, start-prevEnd)
				if _, err := s.ReadAt(b, prevEnd); err != nil {
					break
				}
				dict = append(dict, b...)
			}
			prevEnd = start + (hdr.Size+511)/512*512
		}
	}
	if len(dict) > maxHeaderDict {
		dict = dict[:maxHeaderDict]
	}
	return dict
}

// seekCounter lets archive/tar skip file data by seeking, and tracks the
// position.
type seekCounter struct {
	r   *io.SectionReader
	pos int64
}

func (s *seekCounter) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.pos += int64(n)
	return n, err
}

func (s *seekCounter) Seek(off int64, whence int) (int64, error) {
	n, err := s.r.Seek(off, whence)
	if err == nil {
		s.pos = n
	}
	return n, err
}
