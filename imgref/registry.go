package imgref

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/progress"
	"github.com/diffah/diffah/internal/spool"
)

// isLoopback reports whether a registry host (with optional port) is on
// this machine; such registries may always be spoken to in plain HTTP.
func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// parseRemote turns a docker ref into a ggcr reference, plain HTTP allowed
// for loopback hosts and when insecure.
func parseRemote(ref Ref, insecure bool) (name.Reference, error) {
	r, err := name.ParseReference(ref.Path)
	if err != nil {
		return nil, usage(ref.String()+": "+err.Error(), "use docker://HOST/REPO[:TAG|@DIGEST]")
	}
	if insecure || isLoopback(r.Context().RegistryStr()) {
		r, err = name.ParseReference(ref.Path, name.Insecure)
		if err != nil {
			return nil, usage(ref.String()+": "+err.Error(), "use docker://HOST/REPO[:TAG|@DIGEST]")
		}
	}
	return r, nil
}

// remoteOptions wires auth from ~/.docker/config.json, the context, the
// guarded transport (idle deadlines, redirect cap, manifest size cap) and
// retries with exponential backoff, for the operations ggcr performs
// (pushes).
func remoteOptions(ctx context.Context, o Options) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(baseTransport(o)),
		remote.WithRetryBackoff(o.backoff()),
		remote.WithRetryPredicate(retryable),
		remote.WithRetryStatusCodes(retryStatusCodes...),
		remote.WithUserAgent("diffah"),
	}
}

// remoteErr tags registry errors: unknown names and manifests are Env "not
// found", auth failures and the network Env, a stall Env with a hint, and
// our own verdicts (digest, size, limits: Integrity) keep their kind.
func remoteErr(where string, err error) error {
	if k := fault.KindOf(err, 0); k != 0 {
		return fault.Wrap(k, fmt.Errorf("%s: %w", where, err))
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var stall *StallError
	if errors.As(err, &stall) {
		return fault.WithHint(fault.Errorf(fault.Env, "%s: %w", where, err), fault.Env,
			"the registry stopped answering; check it, or raise --timeout if it is only slow")
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fault.Errorf(fault.Env, "%s: not found: %w", where, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fault.WithHint(fault.Errorf(fault.Env, "%s: access denied: %w", where, err), fault.Env, "log in with `docker login` (credentials are read from ~/.docker/config.json)")
		}
		return fault.Errorf(fault.Env, "%s: the registry answered %d %s: %w", where, te.StatusCode, http.StatusText(te.StatusCode), err)
	}
	return fault.Errorf(fault.Env, "%s: %w", where, err)
}

// openRemote fetches the manifest (choosing a platform from an index) with
// diffah's own client: every manifest bounded and hashed, each one chosen
// from an index fetched by digest and compared. Layers are downloaded once
// each, on first use, verified, and spooled; the config is verified and
// bounded (storeImage).
func openRemote(ctx context.Context, ref Ref, o Options, want v1.Platform) (v1.Image, *resolved, func() error, error) {
	where := ref.String()
	r, err := parseRemote(ref, o.Insecure)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := newRegClient(ctx, r, o, where)
	if err != nil {
		return nil, nil, nil, err
	}
	topRaw, top, err := c.manifest(r.Identifier(), nil)
	if err != nil {
		return nil, nil, nil, err
	}
	res, err := resolveManifest(where, "the registry", top, want, func(d v1.Descriptor) ([]byte, error) {
		if d.Digest == top.Digest {
			return topRaw, nil
		}
		raw, _, err := c.manifest(d.Digest.String(), &d)
		return raw, err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	cache, release := blobCache(ctx)
	var si *storeImage
	blobs := map[v1.Hash]v1.Descriptor{}
	si, err = newStoreImage(where, res.raw, res.desc.MediaType, func(h v1.Hash) (io.ReadCloser, error) {
		d, ok := blobs[h]
		if !ok {
			return nil, fault.Errorf(fault.Integrity, "%s: blob %s is not in the manifest", where, h)
		}
		if h == si.manifest.Config.Digest && d.Size > maxConfigSize {
			// Refused before it is asked for.
			return nil, fault.Errorf(fault.Integrity, "%s: config %s: size %d exceeds the limit of %d bytes", where, h, d.Size, maxConfigSize)
		}
		return cache.Open(Digest(h), d.Size, func() (io.ReadCloser, error) { return c.blob(d) }, where+": blob "+h.String())
	})
	if err != nil {
		return nil, nil, nil, err
	}
	// Preflight (CheckBlob) asks with a HEAD, never a download.
	si.blobSize = func(h v1.Hash) (int64, error) {
		d, ok := blobs[h]
		if !ok {
			return 0, fault.Errorf(fault.Integrity, "%s: blob %s is not in the manifest", where, h)
		}
		return c.blobSize(d)
	}
	blobs[si.manifest.Config.Digest] = si.manifest.Config
	for _, l := range si.manifest.Layers {
		blobs[l.Digest] = l
	}
	img, err := partial.CompressedToImage(si)
	if err != nil {
		return nil, nil, nil, fault.Errorf(fault.Integrity, "%s: %w", where, err)
	}
	return img, res, release, nil
}

func writeRemote(ctx context.Context, ref Ref, img v1.Image, o Options) error {
	r, err := parseRemote(ref, o.Insecure)
	if err != nil {
		return err
	}
	opts := remoteOptions(ctx, o)
	var drawn chan struct{}
	if o.Progress != nil {
		// go-containerregistry reports cumulative bytes of the blobs it
		// uploads (those the registry lacks) and closes the channel.
		updates := make(chan v1.Update, 16)
		drawn = make(chan struct{})
		opts = append(opts, remote.WithProgress(updates))
		go func() {
			defer close(drawn)
			var bar *progress.Bar
			var last int64
			for u := range updates {
				if bar == nil {
					bar = progress.New(o.Progress, "push "+ref.String(), u.Total)
				}
				bar.Add(u.Complete - last)
				last = u.Complete
			}
			bar.Done()
		}()
	}
	err = remote.Write(r, img, opts...)
	if drawn != nil {
		<-drawn
	}
	if err != nil {
		return remoteErr(ref.String(), err)
	}
	return verifyPushedImage(ctx, ref, r, img, o)
}

// verifyPushedImage checks what a push left in the registry: the manifest
// under the pushed tag (or digest) is the one pushed, and every blob it
// references is there with its size and digest. A registry that
// acknowledged what it did not store fails here, not at the site.
func verifyPushedImage(ctx context.Context, ref Ref, r name.Reference, img v1.Image, o Options) error {
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	return VerifyPushed(ctx, ref, r.Identifier(), raw, append([]v1.Descriptor{m.Config}, m.Layers...), o)
}

type blobCacheKey struct{}

// WithBlobCache returns a context under which every registry image opened
// shares one spool of downloaded layers, keyed by digest (their bytes are
// verified, so one digest is one content wherever it was read), and the
// function that releases it. A command runs under one, so that a layer is
// downloaded once per command even when several stages open the same
// image (export plans, then packs). Without it, each opened image spools
// for itself until it is closed.
func WithBlobCache(ctx context.Context) (context.Context, func()) {
	c := &spool.Blobs{}
	return context.WithValue(ctx, blobCacheKey{}, c), func() { c.Close() }
}

func blobCache(ctx context.Context) (*spool.Blobs, func() error) {
	if c, ok := ctx.Value(blobCacheKey{}).(*spool.Blobs); ok {
		return c, func() error { return nil }
	}
	c := &spool.Blobs{}
	return c, c.Close
}
