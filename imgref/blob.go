package imgref

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
)

// Limits for the small JSON documents read whole into memory. Anything bigger
// is hostile or broken; layers are never read whole.
const (
	maxManifestSize = 8 << 20
	maxConfigSize   = 64 << 20
)

// verifier checks a stream against a digest and size as it is read: a short,
// long or altered blob yields a fault.Integrity error in place of io.EOF, so
// no caller can consume bad bytes silently to the end.
type verifier struct {
	r    io.Reader
	c    io.Closer
	h    hash.Hash
	want v1.Hash
	size int64 // -1: unknown
	n    int64
	what string
	err  error
}

// verifyReader wraps rc; what names the blob in errors.
func verifyReader(rc io.ReadCloser, want v1.Hash, size int64, what string) (io.ReadCloser, error) {
	if want.Algorithm != "sha256" {
		rc.Close()
		return nil, fault.Errorf(fault.Integrity, "%s: unsupported digest algorithm %q (only sha256)", what, want.Algorithm)
	}
	return &verifier{r: rc, c: rc, h: sha256.New(), want: want, size: size, what: what}, nil
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = fault.Errorf(fault.Integrity, "%s: longer than its recorded size %d", v.what, v.size)
		return n, v.err
	}
	if errors.Is(err, io.EOF) {
		if v.size >= 0 && v.n != v.size {
			v.err = fault.Errorf(fault.Integrity, "%s: %d bytes, want %d (truncated?)", v.what, v.n, v.size)
			return n, v.err
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			v.err = fault.Errorf(fault.Integrity, "%s: content has digest sha256:%s, want %s", v.what, got, v.want)
			return n, v.err
		}
		v.err = io.EOF
	} else if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifier) Close() error { return v.c.Close() }

// readVerified reads a small blob whole (manifests, configs) and checks it.
func readVerified(rc io.ReadCloser, want v1.Hash, size, limit int64, what string) ([]byte, error) {
	if size < 0 {
		rc.Close()
		return nil, fault.Errorf(fault.Integrity, "%s: recorded size %d is negative", what, size)
	}
	if size > limit {
		rc.Close()
		return nil, fault.Errorf(fault.Integrity, "%s: size %d exceeds the limit of %d bytes", what, size, limit)
	}
	vr, err := verifyReader(rc, want, size, what)
	if err != nil {
		return nil, err
	}
	defer vr.Close()
	b, err := io.ReadAll(io.LimitReader(vr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, fault.Errorf(fault.Integrity, "%s: exceeds the limit of %d bytes", what, limit)
	}
	return b, nil
}

// readLimited reads a small unverified file (index.json, manifest.json).
func readLimited(rc io.ReadCloser, limit int64, what string) ([]byte, error) {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fault.Errorf(fault.Env, "reading %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, fault.Errorf(fault.Integrity, "%s: exceeds the limit of %d bytes", what, limit)
	}
	return b, nil
}

func sha256Hash(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// openErr tags a failure to open a named file: missing is Env (with the
// name), anything else too, since it is about the environment.
func openErr(what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fault.Errorf(fault.Env, "%s: not found: %w", what, err)
	}
	return fault.Errorf(fault.Env, "opening %s: %w", what, err)
}

type readCloser struct {
	io.Reader
	io.Closer
}

func nopCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
