package imgref

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/opencontainers/go-digest"
)

const defaultRetryDelay = time.Second

// Options tune Open and Write.
type Options struct {
	// Platform is "os/arch[/variant]", used when the reference names an
	// index or manifest list; "" means this host's platform. An unset
	// variant matches any. A reference to a single image ignores it.
	Platform string
	// Insecure allows plain HTTP and skips TLS verification for docker://.
	// Loopback registries (127.0.0.0/8, localhost, [::1]) always get plain
	// HTTP.
	Insecure bool
	// RetryTimes is how often a transient registry error (network error,
	// 408, 429, 5xx) is retried (0: never), waiting RetryDelay (default 1s)
	// and doubling each time.
	RetryTimes int
	RetryDelay time.Duration
	// Timeout is how long a registry connection may stay idle (nothing
	// read or written) before the operation fails (0: DefaultTimeout).
	Timeout time.Duration
	// AllowConvert lets Write store an image in a transport that cannot
	// hold it as-is (OCI media types or a non-canonical manifest into
	// docker-archive). The written image then has a different manifest
	// digest; Write logs a warning saying so.
	AllowConvert bool
	// Logger receives such warnings; nil means slog.Default().
	Logger *slog.Logger
	// Progress, when set, receives a progress line while Write pushes to
	// a registry (a terminal; see internal/progress).
	Progress io.Writer
	// LinkFrom is an OCI layout whose blob files this process wrote and
	// verified against their digests, and nothing else writes (resolve's
	// work directory). Write to an oci: or dir: output hard-links a blob
	// found there instead of copying and hashing it again: no second
	// copy of a rebuilt layer on the disk, and no wait for it. Where a
	// link cannot be made (another file system), the blob is copied.
	LinkFrom string
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Image is an opened image: a single, platform-resolved v1.Image whose
// RawManifest and RawConfigFile are the stored bytes.
type Image struct {
	v1.Image
	Ref Ref
	// IndexDigest is the index the image was chosen from by platform, or
	// "" when the reference named a single image.
	IndexDigest digest.Digest
	// Platform is os/arch[/variant] of the image, from the index entry or
	// else its config; "" when unknown.
	Platform string
	// Close releases what Open holds (an open archive file). Never nil.
	Close func() error
}

// Open reads the image ref names. Local archives are read in place; blobs are
// verified against their digests as they stream.
func Open(ctx context.Context, ref Ref, o Options) (*Image, error) {
	want, err := parsePlatform(o.Platform)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &Image{Ref: ref, Close: func() error { return nil }}
	var img v1.Image
	var res *resolved
	switch ref.Transport {
	case OCI:
		var si *storeImage
		si, res, err = readLayout(dirFiles{ctx: ctx, root: ref.Path, ref: ref.String()}, ref.Tag, want)
		if err == nil {
			img, err = partial.CompressedToImage(si)
		}
	case OCIArchive:
		// The archive is indexed and read in place rather than extracted:
		// the same checks apply (no "..", absolute names or links) without
		// a second copy of every layer on disk.
		tf, terr := openTarFiles(ctx, ref.Path, ref.String(), false)
		if terr != nil {
			return nil, wrongTransport(ref, terr)
		}
		out.Close = tf.Close
		var si *storeImage
		si, res, err = readLayout(tf, ref.Tag, want)
		if err == nil {
			img, err = partial.CompressedToImage(si)
		}
	case DockerArchive:
		// docker save writes symlinks for repeated legacy layers.
		tf, terr := openTarFiles(ctx, ref.Path, ref.String(), true)
		if terr != nil {
			return nil, wrongTransport(ref, terr)
		}
		out.Close = tf.Close
		var si *storeImage
		si, err = readDockerArchive(tf, ref.Tag)
		if err == nil {
			res = &resolved{}
			img, err = partial.CompressedToImage(si)
		}
	case Dir:
		var si *storeImage
		si, res, err = readDir(ctx, ref, want)
		if err == nil {
			img, err = partial.CompressedToImage(si)
		}
	case Docker:
		var closeSpool func() error
		img, res, closeSpool, err = openRemote(ctx, ref, o, want)
		if err == nil {
			out.Close = closeSpool
		}
	case DockerDaemon:
		img, res, err = openDaemonImage(ctx, ref, out)
	default:
		return nil, usage(fmt.Sprintf("unknown transport %q", ref.Transport), "use oci:, oci-archive:, docker-archive:, dir:, docker:// or docker-daemon:")
	}
	if err != nil {
		out.Close()
		return nil, wrongTransport(ref, err)
	}
	out.Image = img
	if res.indexDigest.Hex != "" {
		out.IndexDigest = Digest(res.indexDigest)
		out.Platform = res.platform
	}
	if out.Platform == "" {
		cfg, err := img.RawConfigFile()
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("%s: reading the config: %w", ref, err)
		}
		out.Platform = configPlatform(cfg)
	}
	return out, nil
}

// Write stores img at ref, keeping its manifest, config and layers byte for
// byte. Local outputs appear whole or not at all (temporary sibling, then
// rename): oci: adds to (or creates) a layout, replacing the entry with the
// same tag; oci-archive:, docker-archive: files and dir: directories are
// replaced whole; a non-empty directory that is not a layout (oci:) or a
// dir: image is never written into. A transport that cannot hold the image
// as-is is an error whose hint names --allow-convert, unless o.AllowConvert.
//
// oci: and oci-archive: keep Docker schema 2 manifests as they are (as ggcr
// and containerd do); note that skopeo (containers/image) ignores index.json
// entries with Docker media types.
//
// docker-daemon: loads the image into the engine (see LoadDaemon): the
// engine keeps the config and the uncompressed layers, never the manifest,
// so there is nothing to convert and nothing to allow.
func Write(ctx context.Context, ref Ref, img v1.Image, o Options) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ref.Transport == Docker {
		return writeRemote(ctx, ref, img, o)
	}
	if ref.Transport == DockerDaemon {
		id, err := LoadDaemon(ctx, ref, img, o)
		if err == nil {
			o.logger().Info("loaded into the container engine", "ref", ref.String(), "id", id)
		}
		return err
	}
	switch ref.Transport {
	case OCI:
		return writeOCI(ctx, ref, img, o)
	case OCIArchive, DockerArchive, Dir:
	default:
		return usage(fmt.Sprintf("unknown transport %q", ref.Transport), "use oci:, oci-archive:, docker-archive:, dir:, docker:// or docker-daemon:")
	}
	src, err := collect(ctx, img, ref.String())
	if err != nil {
		return err
	}
	switch ref.Transport {
	case OCIArchive:
		entries, err := ociArchiveEntries(src, ref.Tag)
		if err != nil {
			return err
		}
		return writeTarFile(ctx, ref.Path, entries)
	case DockerArchive:
		return writeDockerArchive(ctx, ref, src, o.AllowConvert, o.logger())
	default:
		src.linkFrom(o.LinkFrom)
		return writeDir(ctx, ref, src, o.logger())
	}
}
