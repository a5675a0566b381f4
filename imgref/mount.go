package imgref

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WithMounts returns img with every layer that the registry image base
// also holds marked as mountable from base, so that Write to a repository
// of the same registry mounts those layers across repositories instead of
// uploading them. When base is not a registry image, or out is on another
// registry, img is returned as is.
func WithMounts(img v1.Image, base *Image, out Ref, insecure bool) v1.Image {
	if base == nil || base.Ref.Transport != Docker || out.Transport != Docker {
		return img
	}
	from, err := parseRemote(base.Ref, insecure)
	if err != nil {
		return img
	}
	to, err := parseRemote(out, insecure)
	if err != nil || from.Context().RegistryStr() != to.Context().RegistryStr() {
		return img
	}
	m, err := base.Manifest()
	if err != nil {
		return img
	}
	have := map[v1.Hash]bool{}
	for _, l := range m.Layers {
		have[l.Digest] = true
	}
	return &mountImage{Image: img, have: have, from: base.Ref, insecure: insecure}
}

type mountImage struct {
	v1.Image
	have     map[v1.Hash]bool
	from     Ref
	insecure bool
}

func (m *mountImage) wrap(l v1.Layer) v1.Layer {
	d, err := l.Digest()
	if err != nil || !m.have[d] {
		return l
	}
	ref, err := parseRemote(m.from, m.insecure)
	if err != nil {
		return l
	}
	return &remote.MountableLayer{Layer: l, Reference: ref}
}

// Layers marks shared layers as mountable.
func (m *mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = m.wrap(l)
	}
	return out, nil
}

// LayerByDigest marks a shared layer as mountable.
func (m *mountImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := m.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return m.wrap(l), nil
}

// SameRegistry reports whether a and b are docker:// references on the
// same registry.
func SameRegistry(a, b Ref, insecure bool) bool {
	if a.Transport != Docker || b.Transport != Docker {
		return false
	}
	x, err1 := parseRemote(a, insecure)
	y, err2 := parseRemote(b, insecure)
	return err1 == nil && err2 == nil && x.Context().RegistryStr() == y.Context().RegistryStr()
}
