package imgref

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RemoteName parses a docker:// reference for go-containerregistry, with
// the same plain-HTTP rules Open and Write use.
func RemoteName(ref Ref, insecure bool) (name.Reference, error) { return parseRemote(ref, insecure) }

// RemoteOptions are the registry options Open and Write use: auth from
// ~/.docker/config.json, retries with backoff, TLS per Insecure.
func RemoteOptions(ctx context.Context, o Options) []remote.Option { return remoteOptions(ctx, o) }

// RemoteError tags a registry error with its category and a hint.
func RemoteError(where string, err error) error { return remoteErr(where, err) }
