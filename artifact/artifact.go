// Package artifact moves delta archives through a registry as OCI
// artifacts, for sites whose only way in or out is an internal registry:
// `diffah pack -o docker://reg/deltas:app-1-2` pushes, `diffah unpack
// docker://reg/deltas:app-1-2` pulls and unpacks as it streams.
//
// The artifact is an OCI image manifest with artifactType ArtifactType, the
// empty config, and one layer: the archive, byte for byte.
package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/verify"
	"github.com/diffah/diffah/sidecar"
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

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      digest.Digest     `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// blob is a v1.Layer over bytes on disk or in memory, uploaded as is.
type blob struct {
	open func() (io.ReadCloser, error)
	d    v1.Hash
	size int64
	mt   types.MediaType
}

func (b *blob) Digest() (v1.Hash, error)             { return b.d, nil }
func (b *blob) DiffID() (v1.Hash, error)             { return b.d, nil }
func (b *blob) Compressed() (io.ReadCloser, error)   { return b.open() }
func (b *blob) Uncompressed() (io.ReadCloser, error) { return b.open() }
func (b *blob) Size() (int64, error)                 { return b.size, nil }
func (b *blob) MediaType() (types.MediaType, error)  { return b.mt, nil }

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// Push uploads the archive read from r as an artifact at ref. The archive
// is spooled to a temporary file first (the registry needs its digest
// before the upload completes), not held in memory.
func Push(ctx context.Context, ref imgref.Ref, r io.Reader, o imgref.Options) (Pushed, error) {
	where := ref.String()
	name, err := imgref.RemoteName(ref, o.Insecure)
	if err != nil {
		return Pushed{}, err
	}
	f, err := os.CreateTemp("", "diffah-artifact-*")
	if err != nil {
		return Pushed{}, fault.Errorf(fault.Env, "%s: %w", where, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	head := &headBuf{}
	n, err := io.Copy(io.MultiWriter(f, h, head), r)
	if err != nil {
		return Pushed{}, err
	}
	d := digest.NewDigest(digest.SHA256, h)
	mt := LayerMediaType
	if bytes.HasPrefix(head.b, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		mt = LayerMediaTypeZstd
	}
	hash, _ := v1.NewHash(d.String())
	opts := imgref.RemoteOptions(ctx, o)
	layer := &blob{open: func() (io.ReadCloser, error) { return os.Open(f.Name()) }, d: hash, size: n, mt: types.MediaType(mt)}
	if err := remote.WriteLayer(name.Context(), layer, opts...); err != nil {
		return Pushed{}, imgref.RemoteError(where, err)
	}
	cd := digest.FromBytes(emptyConfig)
	ch, _ := v1.NewHash(cd.String())
	cfg := &blob{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(emptyConfig)), nil }, d: ch, size: 2, mt: emptyMediaType}
	if err := remote.WriteLayer(name.Context(), cfg, opts...); err != nil {
		return Pushed{}, imgref.RemoteError(where, err)
	}
	m := manifest{SchemaVersion: 2, MediaType: string(types.OCIManifestSchema1), ArtifactType: ArtifactType,
		Config: descriptor{MediaType: emptyMediaType, Digest: cd, Size: 2},
		Layers: []descriptor{{MediaType: mt, Digest: d, Size: n, Annotations: map[string]string{"org.opencontainers.image.title": "delta.dlt"}}}}
	raw, err := json.Marshal(m)
	if err != nil {
		return Pushed{}, err
	}
	if err := remote.Put(name, rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
		return Pushed{}, imgref.RemoteError(where, err)
	}
	return Pushed{Manifest: digest.FromBytes(raw), Blob: d, Size: n}, nil
}

// headBuf keeps the first bytes written (to sniff compression).
type headBuf struct{ b []byte }

func (h *headBuf) Write(p []byte) (int, error) {
	if len(h.b) < 4 {
		h.b = append(h.b, p[:min(len(p), 4-len(h.b))]...)
	}
	return len(p), nil
}

// Pull opens the archive of the artifact at ref as a stream that verifies
// its digest at EOF.
func Pull(ctx context.Context, ref imgref.Ref, o imgref.Options) (io.ReadCloser, int64, error) {
	where := ref.String()
	name, err := imgref.RemoteName(ref, o.Insecure)
	if err != nil {
		return nil, 0, err
	}
	opts := imgref.RemoteOptions(ctx, o)
	desc, err := remote.Get(name, opts...)
	if err != nil {
		return nil, 0, imgref.RemoteError(where, err)
	}
	var m manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, 0, fault.Errorf(fault.Usage, "%s: not a diffah delta artifact: %w", where, err)
	}
	if m.ArtifactType != ArtifactType || len(m.Layers) != 1 || (m.Layers[0].MediaType != LayerMediaType && m.Layers[0].MediaType != LayerMediaTypeZstd) {
		found := m.ArtifactType
		if found == "" {
			found = string(desc.MediaType) + " (an image?)"
		}
		return nil, 0, fault.WithHint(fault.Errorf(fault.Usage, "%s is not a diffah delta artifact (found %s with %d layer(s))", where, found, len(m.Layers)),
			fault.Usage, "push deltas with `diffah pack -o docker://...`; images are for --target/--baseline")
	}
	l := m.Layers[0]
	if err := sidecar.CheckDigest(l.Digest); err != nil || l.Size < 0 || l.Size > MaxArchive {
		return nil, 0, fault.Errorf(fault.Integrity, "%s: bad archive descriptor %s (%d bytes)", where, l.Digest, l.Size)
	}
	lh, _ := v1.NewHash(l.Digest.String())
	layer, err := remote.Layer(name.Context().Digest(lh.String()), opts...)
	if err != nil {
		return nil, 0, imgref.RemoteError(where, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, 0, imgref.RemoteError(where, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{verify.NewReader(rc, l.Digest, l.Size, fmt.Sprintf("%s: archive blob %s", where, l.Digest)), rc}, l.Size, nil
}
