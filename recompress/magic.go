package recompress

import (
	"bufio"
	"bytes"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
)

// The first bytes of the two compressions diffah replays; the one home of
// these magics (unpack, artifact and imgref sniff with IsGzip/IsZstd).
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// IsGzip reports whether head, a stream's first bytes, starts a gzip member.
func IsGzip(head []byte) bool { return bytes.HasPrefix(head, gzipMagic) }

// IsZstd reports whether head, a stream's first bytes (4 suffice), starts
// a zstd frame.
func IsZstd(head []byte) bool { return bytes.HasPrefix(head, zstdMagic) }

// Decompress returns the content of a layer blob: gunzipped or
// zstd-decoded by its first bytes, as it is when it is neither (an
// uncompressed layer). The zstd window is bounded as when detecting a
// recipe. Closing the result closes r.
func Decompress(r io.ReadCloser) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(4)
	switch {
	case IsGzip(head):
		zr, err := gzip.NewReader(br)
		if err != nil {
			r.Close()
			return nil, fault.Errorf(fault.Integrity, "recompress: %w", err)
		}
		return readCloser{zr, func() error { zr.Close(); return r.Close() }}, nil
	case IsZstd(head):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<28))
		if err != nil {
			r.Close()
			return nil, fault.Errorf(fault.Integrity, "recompress: %w", err)
		}
		return readCloser{zr, func() error { zr.Close(); return r.Close() }}, nil
	}
	return readCloser{br, r.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (rc readCloser) Close() error { return rc.close() }
