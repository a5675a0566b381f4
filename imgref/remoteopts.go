package imgref

import (
	"context"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/diffah/diffah/fault"
)

// RemoteName parses a docker:// reference for go-containerregistry, with
// the same plain-HTTP rules Open and Write use.
func RemoteName(ref Ref, insecure bool) (name.Reference, error) { return parseRemote(ref, insecure) }

// RemoteOptions are the registry options Open and Write use: auth from
// ~/.docker/config.json, retries with backoff, TLS per Insecure.
func RemoteOptions(ctx context.Context, o Options) []remote.Option { return remoteOptions(ctx, o) }

// RemoteError tags a registry error with its category and a hint.
func RemoteError(where string, err error) error { return remoteErr(where, err) }

// FetchManifest reads the manifest ref names (by tag or digest) from its
// registry with diffah's own client: bounded, hashed, compared with the
// digest asked for. It returns the bytes and their media type.
func FetchManifest(ctx context.Context, ref Ref, o Options) ([]byte, string, error) {
	r, err := parseRemote(ref, o.Insecure)
	if err != nil {
		return nil, "", err
	}
	c, err := newRegClient(ctx, r, o, ref.String())
	if err != nil {
		return nil, "", err
	}
	raw, d, err := c.manifest(r.Identifier(), nil)
	return raw, string(d.MediaType), err
}

// FetchBlob opens blob d (of size bytes) of ref's repository as a stream
// that fails with an Integrity error unless it yields exactly those bytes.
func FetchBlob(ctx context.Context, ref Ref, d digest.Digest, size int64, o Options) (io.ReadCloser, error) {
	r, err := parseRemote(ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(d.String())
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "%s: blob %q: %v", ref, d, err)
	}
	c, err := newRegClient(ctx, r, o, ref.String())
	if err != nil {
		return nil, err
	}
	return c.blob(v1.Descriptor{Digest: h, Size: size})
}

// VerifyPushed checks after a push to ref that the registry serves raw
// under id (the tag or digest pushed) and holds every blob in blobs, of
// the right size and digest (HEAD, and the Docker-Content-Digest it
// reports). A lie is an Integrity error saying what is missing.
func VerifyPushed(ctx context.Context, ref Ref, id string, raw []byte, blobs []v1.Descriptor, o Options) error {
	r, err := parseRemote(ref, o.Insecure)
	if err != nil {
		return err
	}
	c, err := newRegClient(ctx, r, o, ref.String())
	if err != nil {
		return err
	}
	return c.verifyPushed(id, raw, blobs)
}
