// Package artifact moves delta archives through a registry as OCI
// artifacts, for sites whose only way in or out is an internal registry:
// `diffah pack -o docker://reg/deltas:app-1-2` pushes, `diffah unpack
// docker://reg/deltas:app-1-2` pulls and unpacks as it streams.
//
// The artifact is an OCI image manifest with artifactType ArtifactType, the
// empty config, and one layer: the archive, byte for byte.
package artifact

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/recompress"
)

const (
	// ArtifactType marks a diffah delta in a registry.
	ArtifactType = "application/vnd.diffah.delta.v1"
	// LayerMediaType is the archive blob; LayerMediaTypeZstd when the
	// archive is zstd-compressed as a whole.
	LayerMediaType     = "application/vnd.diffah.delta.v1.tar"
	LayerMediaTypeZstd = "application/vnd.diffah.delta.v1.tar+zstd"
	emptyMediaType     = "application/vnd.oci.empty.v1+json"
	// MaxArchive bounds what Pull accepts (1 TiB).
	MaxArchive = 1 << 40
)

var emptyConfig = []byte("{}")

const (
	titleAnnotation = "org.opencontainers.image.title"
	blobTitle       = "delta.dlt"
)

// Pushed describes a pushed artifact.
type Pushed struct {
	Manifest digest.Digest
	Blob     digest.Digest
	Size     int64
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// descriptor is an OCI descriptor as internal/layout has it.
type descriptor = layout.Descriptor

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// streamBlob is a v1.Layer whose bytes come from a reader of unknown size,
// sent once, as they are read. Its digest and size are unknown
// (stream.ErrNotComputed) until the reader is drained, which makes ggcr
// use a chunked upload and commit with the digest computed on the way.
type streamBlob struct {
	r       io.Reader
	mt      types.MediaType
	h       hash.Hash
	n       int64
	done    bool
	opened  bool
	readErr error // from r, not from the registry
}

var errResent = errors.New("the archive is a stream and was already partly sent; it cannot be sent again")

func (b *streamBlob) Digest() (v1.Hash, error) {
	if !b.done {
		return v1.Hash{}, stream.ErrNotComputed
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(b.h.Sum(nil))}, nil
}
func (b *streamBlob) DiffID() (v1.Hash, error) { return b.Digest() }
func (b *streamBlob) Size() (int64, error) {
	if !b.done {
		return 0, stream.ErrNotComputed
	}
	return b.n, nil
}
func (b *streamBlob) MediaType() (types.MediaType, error)  { return b.mt, nil }
func (b *streamBlob) Uncompressed() (io.ReadCloser, error) { return b.Compressed() }

// Compressed hands out the stream once: a retry after part of it was sent
// cannot rewind a pipe, so it fails instead of uploading a truncated blob.
func (b *streamBlob) Compressed() (io.ReadCloser, error) {
	if b.opened {
		return nil, errResent
	}
	b.opened = true
	return io.NopCloser(b), nil
}

func (b *streamBlob) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	if err == io.EOF {
		b.done = true
	} else if err != nil {
		b.readErr = err
	}
	return n, err
}

// Push uploads the archive read from r as an artifact at ref, streaming it
// to the registry as it is read (nothing is buffered beyond a chunk). A
// failed upload is not retried once bytes have been taken from r (a
// failure after all of r was read is retried only as far as asking whether
// the blob, now of known digest, already arrived).
func Push(ctx context.Context, ref imgref.Ref, r io.Reader, o imgref.Options) (Pushed, error) {
	where := ref.String()
	name, err := imgref.RemoteName(ref, o.Insecure)
	if err != nil {
		return Pushed{}, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	// The media type goes in the manifest, so sniff zstd before sending.
	head, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return Pushed{}, fault.Wrap(fault.KindOf(err, fault.Env), fmt.Errorf("%s: reading the archive: %w", where, err))
	}
	mt := LayerMediaType
	if recompress.IsZstd(head) {
		mt = LayerMediaTypeZstd
	}
	opts := imgref.RemoteOptions(ctx, o)
	layer := &streamBlob{r: br, mt: types.MediaType(mt), h: sha256.New()}
	if err := remote.WriteLayer(name.Context(), layer, opts...); err != nil {
		if layer.readErr != nil {
			return Pushed{}, fault.Wrap(fault.KindOf(layer.readErr, fault.Env), fmt.Errorf("%s: reading the archive after %d bytes: %w", where, layer.n, layer.readErr))
		}
		return Pushed{}, imgref.RemoteError(fmt.Sprintf("%s: uploading the archive (%d bytes sent)", where, layer.n), err)
	}
	bd, _ := layer.Digest()
	d := imgref.Digest(bd)
	cfg := static.NewLayer(emptyConfig, emptyMediaType)
	if err := remote.WriteLayer(name.Context(), cfg, opts...); err != nil {
		return Pushed{}, imgref.RemoteError(where+": uploading the empty config", err)
	}
	m := manifest{SchemaVersion: 2, MediaType: string(types.OCIManifestSchema1), ArtifactType: ArtifactType,
		Config: descriptor{MediaType: emptyMediaType, Digest: digest.FromBytes(emptyConfig), Size: int64(len(emptyConfig))},
		Layers: []descriptor{{MediaType: mt, Digest: d, Size: layer.n, Annotations: map[string]string{titleAnnotation: blobTitle}}}}
	raw, err := json.Marshal(m)
	if err != nil {
		return Pushed{}, err
	}
	if err := remote.Put(name, rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
		return Pushed{}, imgref.RemoteError(where+": writing the manifest", err)
	}
	blobs := []v1.Descriptor{{Digest: bd, Size: layer.n}, {Digest: v1.Hash{Algorithm: "sha256", Hex: digest.FromBytes(emptyConfig).Encoded()}, Size: int64(len(emptyConfig))}}
	if err := imgref.VerifyPushed(ctx, ref, name.Identifier(), raw, blobs, o); err != nil {
		return Pushed{}, err
	}
	return Pushed{Manifest: digest.FromBytes(raw), Blob: d, Size: layer.n}, nil
}

// Pull opens the archive of the artifact at ref as a stream that verifies
// its digest and size as it is read (a short, long or altered archive is
// an Integrity error, a failing network Env).
func Pull(ctx context.Context, ref imgref.Ref, o imgref.Options) (io.ReadCloser, int64, error) {
	where := ref.String()
	raw, mt, err := imgref.FetchManifest(ctx, ref, o)
	if err != nil {
		return nil, 0, err
	}
	l, err := parseManifest(raw, mt, where)
	if err != nil {
		return nil, 0, err
	}
	rc, err := imgref.FetchBlob(ctx, ref, l.Digest, l.Size, o)
	if err != nil {
		return nil, 0, err
	}
	return rc, l.Size, nil
}

// parseManifest checks that raw (served as mediaType) is a diffah delta
// artifact and returns the archive's descriptor.
func parseManifest(raw []byte, mediaType, where string) (descriptor, error) {
	const hint = "push deltas with `diffah pack -o docker://...`; images belong in --target/--baseline"
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return descriptor{}, fault.WithHint(fault.Errorf(fault.Usage, "%s is not a diffah delta artifact (%s that does not parse: %w)", where, mediaType, err), fault.Usage, hint)
	}
	ok := m.ArtifactType == ArtifactType && len(m.Layers) == 1 &&
		(m.Layers[0].MediaType == LayerMediaType || m.Layers[0].MediaType == LayerMediaTypeZstd)
	if !ok {
		found := "artifactType " + strconv.Quote(m.ArtifactType)
		if m.ArtifactType == "" {
			found = "no artifactType: " + mediaType
			if m.Config.MediaType != "" {
				found += " with config " + m.Config.MediaType + " (a container image?)"
			}
		}
		var mts []string
		for _, l := range m.Layers {
			mts = append(mts, l.MediaType)
		}
		return descriptor{}, fault.WithHint(fault.Errorf(fault.Usage, "%s is not a diffah delta artifact: found %s, %d layer(s) %v; want artifactType %s and one %s layer",
			where, found, len(m.Layers), mts, ArtifactType, LayerMediaType), fault.Usage, hint)
	}
	l := m.Layers[0]
	if err := layout.CheckDigest(l.Digest, where); err != nil || l.Size < 0 || l.Size > MaxArchive {
		return descriptor{}, fault.Errorf(fault.Integrity, "%s: bad archive descriptor %q (%d bytes) in the manifest", where, l.Digest, l.Size)
	}
	return l, nil
}
