package recompress

import "bytes"

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
