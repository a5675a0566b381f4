package imgref

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/progress"
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

// remoteOptions wires auth from ~/.docker/config.json, the context, retries
// with exponential backoff and, when insecure, a transport that skips TLS
// verification.
func remoteOptions(ctx context.Context, o Options) []remote.Option {
	steps := o.RetryTimes + 1
	if steps < 1 {
		steps = 1
	}
	delay := o.RetryDelay
	if delay <= 0 {
		delay = defaultRetryDelay
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithRetryBackoff(remote.Backoff{Duration: delay, Factor: 2, Jitter: 0.1, Steps: steps}),
		remote.WithUserAgent("diffah"),
	}
	if o.Insecure {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with Insecure
		opts = append(opts, remote.WithTransport(t))
	}
	return opts
}

// remoteErr tags registry errors: unknown names and manifests are Env "not
// found", auth failures Env, bad content Integrity.
func remoteErr(where string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fault.Errorf(fault.Env, "%s: not found: %w", where, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fault.WithHint(fault.Errorf(fault.Env, "%s: access denied: %w", where, err), fault.Env, "log in with `docker login` (credentials are read from ~/.docker/config.json)")
		}
	}
	if fault.KindOf(err, 0) != 0 {
		return err
	}
	return fault.Errorf(fault.Env, "%s: %w", where, err)
}

// openRemote fetches the manifest (choosing a platform from an index) and
// returns ggcr's remote image. ggcr verifies what it fetches: manifests
// against a digest reference or the index entry, blobs (config and
// layers) with a verifying reader as they stream.
func openRemote(ctx context.Context, ref Ref, o Options, want v1.Platform) (v1.Image, *resolved, error) {
	where := ref.String()
	r, err := parseRemote(ref, o.Insecure)
	if err != nil {
		return nil, nil, err
	}
	opts := remoteOptions(ctx, o)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, nil, remoteErr(where, err)
	}
	res := &resolved{desc: desc.Descriptor}
	if !isIndex(desc.MediaType) {
		img, err := desc.Image()
		if err != nil {
			return nil, nil, remoteErr(where, err)
		}
		return img, res, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, nil, remoteErr(where, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fault.Errorf(fault.Integrity, "%s: index: %w", where, err)
	}
	chosen, err := choosePlatform(im, want, where)
	if err != nil {
		return nil, nil, err
	}
	if isIndex(chosen.MediaType) {
		return nil, nil, fault.Errorf(fault.Integrity, "%s: nested index %s is not supported for registries", where, chosen.Digest)
	}
	img, err := idx.Image(chosen.Digest)
	if err != nil {
		return nil, nil, remoteErr(where, err)
	}
	res.indexDigest = desc.Digest
	res.desc = chosen
	if chosen.Platform != nil {
		res.platform = platformString(*chosen.Platform)
	}
	return img, res, nil
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
	return nil
}
