// Package verify checks content against a size and sha256 as it streams:
// nothing diffah writes or trusts is hashed after the fact from a buffer.
package verify

import (
	"crypto/sha256"
	"errors"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

// Reader passes r through and fails — on the read that would exceed size,
// or at EOF when the size or sha256 differ — with a fault.Integrity error
// naming what, in place of io.EOF, so no caller can consume bad bytes
// silently to the end. Callers must read to io.EOF for the check to run.
// An error is sticky: every later Read returns it again.
type Reader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	size int64
	want digest.Digest
	what string
	err  error
}

// NewReader verifies that r yields exactly size bytes hashing to want.
func NewReader(r io.Reader, want digest.Digest, size int64, what string) *Reader {
	return &Reader{r: r, h: sha256.New(), size: size, want: want, what: what}
}

func (v *Reader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.read(p)
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *Reader) read(p []byte) (int, error) {
	if v.size < 0 {
		return 0, fault.Errorf(fault.Integrity, "%s: negative expected size %d", v.what, v.size)
	}
	// Read one byte past the declared size at most, to notice overlong
	// content without swallowing a whole bomb. rem is computed without
	// adding 1 first: a size near 2^63 would overflow.
	if rem := v.size - v.n; int64(len(p)) > rem {
		p = p[:rem+1]
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		return n, fault.Errorf(fault.Integrity, "%s: more than the expected %d bytes", v.what, v.size)
	}
	if errors.Is(err, io.EOF) {
		if v.n != v.size {
			return n, fault.Errorf(fault.Integrity, "%s: %d bytes, expected %d (truncated?)", v.what, v.n, v.size)
		}
		if got := digest.NewDigest(digest.SHA256, v.h); got != v.want {
			return n, fault.Errorf(fault.Integrity, "%s: content is %s, expected %s (wrong digest)", v.what, got, v.want)
		}
		return n, io.EOF
	}
	return n, err
}

// ReadCloser is a Reader that closes the stream it verifies.
type ReadCloser struct {
	*Reader
	c io.Closer
}

// NewReadCloser verifies rc as NewReader does; Close closes rc.
func NewReadCloser(rc io.ReadCloser, want digest.Digest, size int64, what string) ReadCloser {
	return ReadCloser{NewReader(rc, want, size, what), rc}
}

// Close closes the verified stream.
func (v ReadCloser) Close() error { return v.c.Close() }

// Copy copies r to w through a verifying reader.
func Copy(w io.Writer, r io.Reader, want digest.Digest, size int64, what string) (int64, error) {
	return io.Copy(w, NewReader(r, want, size, what))
}
