package imgref

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/verify"
)

// Limits for the small JSON documents read whole into memory. Anything bigger
// is hostile or broken; layers are never read whole.
const (
	maxManifestSize = 8 << 20
	maxConfigSize   = 64 << 20
)

// verifyReader wraps rc in the one verifying reader (internal/verify),
// converting ggcr's digest at this boundary; what names the blob in errors.
func verifyReader(rc io.ReadCloser, want v1.Hash, size int64, what string) (io.ReadCloser, error) {
	if want.Algorithm != "sha256" {
		rc.Close()
		return nil, fault.Errorf(fault.Integrity, "%s: unsupported digest algorithm %q (only sha256)", what, want.Algorithm)
	}
	return verify.NewReadCloser(rc, Digest(want), size, what), nil
}

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

// UncompressedThrough opens l's uncompressed content as l.Uncompressed
// does (the compressed bytes, decompressed by their magic), reading the
// compressed bytes through wrap: a caller counts them to show progress
// in the units a layer's size is given in. A nil wrap is l.Uncompressed.
func UncompressedThrough(l v1.Layer, wrap func(io.Reader) io.Reader) (io.ReadCloser, error) {
	if wrap == nil {
		return l.Uncompressed()
	}
	cl, err := partial.CompressedToLayer(throughLayer{l, wrap})
	if err != nil {
		return nil, err
	}
	return cl.Uncompressed()
}

// throughLayer is l as a compressed-only layer whose compressed bytes
// are read through wrap.
type throughLayer struct {
	l    v1.Layer
	wrap func(io.Reader) io.Reader
}

func (t throughLayer) Digest() (v1.Hash, error)            { return t.l.Digest() }
func (t throughLayer) Size() (int64, error)                { return t.l.Size() }
func (t throughLayer) MediaType() (types.MediaType, error) { return t.l.MediaType() }
func (t throughLayer) Compressed() (io.ReadCloser, error) {
	rc, err := t.l.Compressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{t.wrap(rc), rc}, nil
}
