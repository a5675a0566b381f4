package tarpatch

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Bounds of one ADIFF op (see adiff.go), fixed whatever the patch says.
const (
	// maxADiffSections bounds the three compressed sections together.
	maxADiffSections = MaxOut + MaxOut/8 + 1<<16
	// adiffWindow bounds the zstd window of an ADIFF section: the encoder
	// compresses at most a chunk (MaxChunk) against at most dictWindow.
	adiffWindow = 2 * dictWindow
	// adiffPiece is how much of a copy or extra run is decoded at once.
	adiffPiece = 64 << 10
)

// adiffStream is one decompressed section, read as it streams.
type adiffStream struct {
	dec *zstd.Decoder
	br  *bufio.Reader
}

func openADiffStream(z []byte, dict []byte) (*adiffStream, error) {
	opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(adiffWindow), zstd.WithDecoderMaxMemory(adiffWindow)}
	if len(dict) > 0 {
		opts = append(opts, zstd.WithDecoderDictRaw(dictID, dict))
	}
	dec, err := zstd.NewReader(bytes.NewReader(z), opts...)
	if err != nil {
		return nil, err
	}
	return &adiffStream{dec: dec, br: bufio.NewReaderSize(dec, 32<<10)}, nil
}

func (s *adiffStream) close() {
	if s != nil {
		s.dec.Close()
	}
}

// atEnd reports whether the stream has nothing left.
func (s *adiffStream) atEnd() bool {
	_, err := s.br.ReadByte()
	return err == io.EOF
}

// adiff decodes an ADIFF op (the op byte already read). Every length is
// checked against what is left of outLen before anything is read for it;
// memory is the dictionary, the compressed sections (at most
// maxADiffSections together) and fixed-size buffers.
func (d *decoder) adiff() error {
	dict, outLen, err := d.v2Head(opADiff, "adiff")
	if err != nil {
		return err
	}
	return d.adiffBody(dict, dict, outLen, d.write)
}

// v2Head reads what a format-2 op starts with — its dictionary ranges and
// output length — and refuses the op in a format-1 patch.
func (d *decoder) v2Head(op int, name string) ([]byte, uint64, error) {
	if d.version < 2 {
		return nil, 0, fmt.Errorf("op 0x%02x needs format %s", op, Codec)
	}
	dict, err := d.dictRanges()
	if err != nil {
		return nil, 0, err
	}
	outLen, err := d.uvarint(name+" output length", MaxOut)
	if err != nil {
		return nil, 0, err
	}
	return dict, outLen, d.grow(outLen)
}

// adiffBody decodes ADIFF's three sections into outLen bytes against
// dict, passing them to emit as they are rebuilt; xdict is the extra
// stream's zstd dictionary.
func (d *decoder) adiffBody(dict, xdict []byte, outLen uint64, emit func([]byte) error) error {
	var secs [3][]byte
	left := uint64(maxADiffSections)
	for i := range secs {
		n, err := d.uvarint("adiff section length", left)
		if err != nil {
			return err
		}
		left -= n
		// Read as the bytes arrive: a length the patch does not back
		// with data allocates nothing.
		var b bytes.Buffer
		if _, err := io.CopyN(&b, d.ops, int64(n)); err != nil {
			return fmt.Errorf("adiff section %d: %w", i, err)
		}
		secs[i] = b.Bytes()
	}
	var st [3]*adiffStream
	defer func() {
		for _, s := range st {
			s.close()
		}
	}()
	for i := range st {
		var dd []byte
		if i == 2 {
			dd = xdict
		}
		var err error
		if st[i], err = openADiffStream(secs[i], dd); err != nil {
			return fmt.Errorf("adiff section %d: %w", i, err)
		}
	}
	ctrl, diff, extra := st[0].br, st[1].br, st[2].br
	pos, err := binary.ReadVarint(ctrl)
	if err != nil {
		return errors.New("adiff: control stream has no start")
	}
	buf := make([]byte, adiffPiece)
	for done := uint64(0); done < outLen; {
		dl, err := binary.ReadUvarint(ctrl)
		if err != nil {
			return errors.New("adiff: control stream ends early")
		}
		el, err := binary.ReadUvarint(ctrl)
		if err != nil {
			return errors.New("adiff: control stream ends early")
		}
		seek, err := binary.ReadVarint(ctrl)
		if err != nil {
			return errors.New("adiff: control stream ends early")
		}
		if dl+el == 0 || dl > outLen-done || el > outLen-done-dl {
			return fmt.Errorf("adiff: entry of %d+%d bytes at %d of %d", dl, el, done, outLen)
		}
		if pos < 0 || pos > int64(len(dict)) || dl > uint64(int64(len(dict))-pos) {
			return fmt.Errorf("adiff: copy %d+%d outside the %d-byte dictionary", pos, dl, len(dict))
		}
		for rem := int(dl); rem > 0; {
			p := buf[:min(rem, len(buf))]
			if _, err := io.ReadFull(diff, p); err != nil {
				return fmt.Errorf("adiff: difference stream ends early: %w", err)
			}
			for i := range p {
				p[i] += dict[pos+int64(i)]
			}
			if err := emit(p); err != nil {
				return err
			}
			pos += int64(len(p))
			rem -= len(p)
		}
		for rem := int(el); rem > 0; {
			p := buf[:min(rem, len(buf))]
			if _, err := io.ReadFull(extra, p); err != nil {
				return fmt.Errorf("adiff: extra stream ends early: %w", err)
			}
			if err := emit(p); err != nil {
				return err
			}
			rem -= len(p)
		}
		done += dl + el
		if seek < -(1<<40) || seek > 1<<40 {
			return fmt.Errorf("adiff: seek %d out of range", seek)
		}
		pos += seek
	}
	for i, s := range st {
		if !s.atEnd() {
			return fmt.Errorf("adiff: section %d has data after the output", i)
		}
	}
	return nil
}
