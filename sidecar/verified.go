package sidecar

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
)

// A sidecar repeats things the image's own bytes say: the manifest's
// media type, the config's and layers' descriptors, the diffIDs and the
// platform in the config. Only the bytes are verified (by digest); the
// copies in the sidecar are not, so a lying sidecar could make a layout
// whose index.json disagrees with its manifest. CheckManifest and
// CheckConfig compare every such copy with the verified bytes; a
// disagreement is an integrity error.

type manifestDoc struct {
	SchemaVersion int              `json:"schemaVersion"`
	MediaType     string           `json:"mediaType"`
	Config        Descriptor       `json:"config"`
	Layers        []Descriptor     `json:"layers"`
	Manifests     *json.RawMessage `json:"manifests"`
}

// ManifestMediaType is the media type an image manifest's bytes declare:
// its mediaType field, or OCI's when the field is absent (allowed by the
// OCI spec). Anything but an OCI or Docker schema 2 image manifest is an
// integrity error.
func ManifestMediaType(raw []byte) (string, error) {
	var m manifestDoc
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fault.Errorf(fault.Integrity, "manifest: %w", err)
	}
	return m.mediaType()
}

func (m *manifestDoc) mediaType() (string, error) {
	mt := m.MediaType
	if mt == "" && m.Manifests == nil {
		mt = string(types.OCIManifestSchema1)
	}
	if m.SchemaVersion != 2 || mt != string(types.OCIManifestSchema1) && mt != string(types.DockerManifestSchema2) {
		return "", fault.Errorf(fault.Integrity, "manifest: schemaVersion %d, media type %.100q: not an OCI or Docker schema 2 image manifest", m.SchemaVersion, mt)
	}
	return mt, nil
}

// CheckManifest checks the image's blob list against its manifest's
// bytes, which the caller has verified against Target.Manifest: the
// manifest's media type, then the config and every layer (digest, size,
// media type), in order. The manifest's digests pass layout.CheckDigest
// before anything uses them.
func (im *Image) CheckManifest(raw []byte) error {
	lie := func(format string, args ...any) error {
		return fault.WithHint(fault.Errorf(fault.Integrity, "image %q: the sidecar disagrees with the manifest %s: "+format,
			append([]any{im.Name, im.Target.Manifest.Digest}, args...)...), fault.Integrity, "the archive's sidecar was altered; get the archive again from its producer")
	}
	if got := digest.FromBytes(raw); got != im.Target.Manifest.Digest || int64(len(raw)) != im.Target.Manifest.Size {
		return lie("the manifest bytes are %s (%d bytes)", got, len(raw))
	}
	var m manifestDoc
	if err := json.Unmarshal(raw, &m); err != nil {
		return fault.Errorf(fault.Integrity, "image %q: manifest %s: %w", im.Name, im.Target.Manifest.Digest, err)
	}
	mt, err := m.mediaType()
	if err != nil {
		return fmt.Errorf("image %q: %w", im.Name, err)
	}
	if mt != im.Target.Manifest.MediaType {
		return lie("media type %q, the manifest's own is %q", im.Target.Manifest.MediaType, mt)
	}
	got := append([]Descriptor{m.Config}, m.Layers...)
	want := im.Blobs[1:]
	if len(got) != len(want) {
		return lie("%d blobs, the manifest lists %d", len(want), len(got))
	}
	for i, d := range got {
		if err := layout.CheckDigest(d.Digest, fmt.Sprintf("image %q: manifest blob %d", im.Name, i)); err != nil {
			return err
		}
		if w := want[i].Descriptor; d != w {
			return lie("blob %d is %s (%d bytes, %s), the manifest says %s (%d bytes, %s)", i, w.Digest, w.Size, w.MediaType, d.Digest, d.Size, d.MediaType)
		}
	}
	return nil
}

// CheckConfig checks the sidecar's diffIDs and platform against the
// image's config bytes, which the caller has verified against the config
// blob's digest.
func (im *Image) CheckConfig(raw []byte) error {
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
		RootFS       struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fault.Errorf(fault.Integrity, "image %q: config %s: %w", im.Name, im.Blobs[1].Digest, err)
	}
	lie := func(format string, args ...any) error {
		return fault.WithHint(fault.Errorf(fault.Integrity, "image %q: the sidecar disagrees with the config %s: "+format,
			append([]any{im.Name, im.Blobs[1].Digest}, args...)...), fault.Integrity, "the archive's sidecar was altered; get the archive again from its producer")
	}
	layers := im.Blobs[2:]
	if len(c.RootFS.DiffIDs) != len(layers) {
		return lie("%d layers, the config lists %d diffIDs", len(layers), len(c.RootFS.DiffIDs))
	}
	for i, b := range layers {
		if b.DiffID != "" && b.DiffID != c.RootFS.DiffIDs[i] {
			return lie("layer %d has diffID %s, the config says %s", i, b.DiffID, c.RootFS.DiffIDs[i])
		}
	}
	// The platform may come from an index entry, which can name a
	// variant the config leaves out; os and architecture must agree.
	if p := im.Target.Platform; p != "" && c.OS != "" && c.Architecture != "" {
		parts := strings.Split(p, "/")
		if len(parts) < 2 || parts[0] != c.OS || parts[1] != c.Architecture || len(parts) > 2 && c.Variant != "" && parts[2] != c.Variant {
			cfg := c.OS + "/" + c.Architecture
			if c.Variant != "" {
				cfg += "/" + c.Variant
			}
			return lie("platform %q, the config says %q", p, cfg)
		}
	}
	return nil
}
