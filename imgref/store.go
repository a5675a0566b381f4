package imgref

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
)

// files is a read-only view of a local store: a directory or the regular
// files of a tar archive. Names use forward slashes and are relative.
type files interface {
	open(name string) (io.ReadCloser, error)
	// statSize returns the size of a member without reading it, with the
	// same checks as open (a regular file inside the store).
	statSize(name string) (int64, error)
	// where names the store in errors, e.g. "oci:./app".
	where() string
}

// dirFiles is a store in a directory (oci:, dir:). Members are opened
// with openInside: regular files inside root only. Reads honour ctx.
type dirFiles struct {
	ctx       context.Context
	root, ref string
}

func (d dirFiles) open(name string) (io.ReadCloser, error) {
	f, err := openInside(d.root, name, d.ref+": "+name)
	if err != nil {
		return nil, err
	}
	return withContext(d.ctx, f), nil
}

func (d dirFiles) statSize(name string) (int64, error) {
	f, err := openInside(d.root, name, d.ref+": "+name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fault.Errorf(fault.Env, "%s: %s: %w", d.ref, name, err)
	}
	return st.Size(), nil
}

func (d dirFiles) where() string { return d.ref }

// storeImage is a partial.CompressedImageCore over a blob opener. Its
// manifest is the verified stored bytes; config and layers are verified as
// they are read. ggcr's own layout reader does not verify blobs, which is
// why local transports use this type instead.
type storeImage struct {
	where    string
	raw      []byte
	mt       types.MediaType
	manifest *v1.Manifest
	blob     func(h v1.Hash) (io.ReadCloser, error)
	// blobSize stats a blob without reading it (see CheckBlob).
	blobSize func(h v1.Hash) (int64, error)

	cfgOnce sync.Once
	cfg     []byte
	cfgErr  error
}

var _ partial.CompressedImageCore = (*storeImage)(nil)

// newStoreImage checks raw is a single-image manifest of a supported kind.
func newStoreImage(where string, raw []byte, declared types.MediaType, blob func(v1.Hash) (io.ReadCloser, error)) (*storeImage, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "%s: manifest: %w", where, err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = declared
	}
	if mt == "" {
		// An OCI manifest may omit mediaType; Docker schema 2 may not.
		mt = types.OCIManifestSchema1
	}
	if mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return nil, fault.Errorf(fault.Integrity, "%s: unsupported manifest media type %q (want %s or %s)", where, mt, types.OCIManifestSchema1, types.DockerManifestSchema2)
	}
	if err := checkDescriptor(m.Config, where+": manifest: config"); err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(l, fmt.Sprintf("%s: manifest: layer %d", where, i)); err != nil {
			return nil, err
		}
	}
	return &storeImage{where: where, raw: raw, mt: mt, manifest: m, blob: blob}, nil
}

func (s *storeImage) RawManifest() ([]byte, error)        { return s.raw, nil }
func (s *storeImage) MediaType() (types.MediaType, error) { return s.mt, nil }

// RawConfigFile reads and verifies the config once; callers above ask for
// it often.
func (s *storeImage) RawConfigFile() ([]byte, error) {
	s.cfgOnce.Do(func() {
		d := s.manifest.Config
		rc, err := s.blob(d.Digest)
		if err != nil {
			s.cfgErr = err
			return
		}
		s.cfg, s.cfgErr = readVerified(rc, d.Digest, d.Size, maxConfigSize, s.where+": config "+d.Digest.String())
	})
	return s.cfg, s.cfgErr
}

func (s *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == s.manifest.Config.Digest {
		return &storeBlob{img: s, desc: s.manifest.Config}, nil
	}
	for _, d := range s.manifest.Layers {
		if d.Digest == h {
			return &storeBlob{img: s, desc: d}, nil
		}
	}
	return nil, fault.Errorf(fault.Integrity, "%s: blob %s is not in the manifest", s.where, h)
}

// storeBlob is one layer (or the config) of a storeImage.
type storeBlob struct {
	img  *storeImage
	desc v1.Descriptor
}

func (b *storeBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *storeBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *storeBlob) Descriptor() (*v1.Descriptor, error) { d := b.desc; return &d, nil }

// Exists is partial.Exists for a stored blob: whether the store holds it as
// a regular file of the size the manifest records. A file of another
// size is damage and returned as an error.
func (b *storeBlob) Exists() (bool, error) {
	if b.img.blobSize == nil {
		return false, fault.Errorf(fault.Internal, "%s: no way to stat blobs", b.img.where)
	}
	n, err := b.img.blobSize(b.desc.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if n != b.desc.Size {
		return false, fault.Errorf(fault.Integrity, "%s: blob %s is %d bytes, the manifest says %d", b.img.where, b.desc.Digest, n, b.desc.Size)
	}
	return true, nil
}

func (b *storeBlob) Compressed() (io.ReadCloser, error) {
	rc, err := b.img.blob(b.desc.Digest)
	if err != nil {
		return nil, err
	}
	return verifyReader(rc, b.desc.Digest, b.desc.Size, b.img.where+": blob "+b.desc.Digest.String())
}

// isIndex reports whether mt names an image index or manifest list.
func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

// sniffMediaType returns the media type a manifest or index declares, or,
// for OCI documents that omit it, infers it from the fields present.
func sniffMediaType(raw []byte) types.MediaType {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return types.OCIImageIndex
	case probe.Config != nil:
		return types.OCIManifestSchema1
	}
	return ""
}

// resolved is the outcome of walking from a descriptor to a single image.
type resolved struct {
	desc        v1.Descriptor // the image manifest's descriptor
	raw         []byte
	indexDigest v1.Hash // the index a platform was picked from, if any
	platform    string
}

// resolveManifest follows desc through (nested) indexes to a single image,
// choosing by platform. fetch returns the verified bytes of a manifest.
// from names the document desc was read from ("index.json"), for errors.
func resolveManifest(where, from string, desc v1.Descriptor, want v1.Platform, fetch func(v1.Descriptor) ([]byte, error)) (*resolved, error) {
	var res resolved
	for depth := 0; ; depth++ {
		if depth > 4 {
			return nil, fault.Errorf(fault.Integrity, "%s: indexes nested too deeply", where)
		}
		if err := checkDescriptor(desc, where+": "+from+": entry"); err != nil {
			return nil, err
		}
		raw, err := fetch(desc)
		if err != nil {
			if fault.KindOf(err, 0) == fault.Integrity {
				// Say whose claim the bytes failed: digest and size come
				// from the entry that named them.
				err = fmt.Errorf("%w (digest and size as %s records them)", err, from)
			}
			return nil, err
		}
		mt, err := claimedType(desc.MediaType, raw, where, from, desc.Digest)
		if err != nil {
			return nil, err
		}
		if !isIndex(mt) {
			res.desc, res.raw = desc, raw
			res.desc.MediaType = mt
			return &res, nil
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "%s: index %s: %w", where, desc.Digest, err)
		}
		chosen, err := choosePlatform(idx, want, where)
		if err != nil {
			return nil, err
		}
		res.indexDigest = desc.Digest
		if chosen.Platform != nil {
			res.platform = platformString(*chosen.Platform)
		}
		from = "index " + desc.Digest.String()
		desc = chosen
	}
}

// claimedType checks the media type a descriptor claims against what the
// bytes it names are, and returns the type. A document that states its
// mediaType must state the claimed one; one that does not (OCI allows
// that) must have the shape of the claim: an index lists "manifests", a
// manifest has a "config". A mismatch is damage in the store, reported
// naming the document that made the claim, never resolved by guessing.
func claimedType(claimed types.MediaType, raw []byte, where, from string, d v1.Hash) (types.MediaType, error) {
	var probe struct {
		MediaType *types.MediaType `json:"mediaType"`
		Manifests json.RawMessage  `json:"manifests"`
		Config    json.RawMessage  `json:"config"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return "", fault.Errorf(fault.Integrity, "%s: %s is not JSON (named by %s): %w", where, d, from, err)
	}
	var stated types.MediaType
	if probe.MediaType != nil {
		stated = *probe.MediaType
	}
	mismatch := func(is string) error {
		return fault.WithHint(fault.Errorf(fault.Integrity, "%s: %s says %s is %s, but its bytes are %s", where, from, d, claimed, is),
			fault.Integrity, "the store is damaged or was edited by hand; get the image again, or fix the entry's mediaType")
	}
	switch {
	case stated != "" && claimed != "" && stated != claimed:
		return "", mismatch(string(stated))
	case stated != "":
		return stated, nil
	case claimed == "":
		return sniffMediaType(raw), nil
	case isIndex(claimed) && probe.Manifests == nil:
		return "", mismatch("not an index (no \"manifests\")")
	case !isIndex(claimed) && probe.Manifests != nil:
		return "", mismatch("an index (it lists \"manifests\")")
	case !isIndex(claimed) && probe.Config == nil:
		return "", mismatch("not an image manifest (no \"config\")")
	}
	return claimed, nil
}

// maxBlobSize bounds any size a descriptor states: no real blob is near
// 2^50 bytes, and sums of such sizes cannot overflow.
const maxBlobSize = 1 << 50

// checkDescriptor refuses a descriptor whose digest could not name a file
// (layout.CheckDigest) or whose size is negative or absurd.
func checkDescriptor(d v1.Descriptor, what string) error {
	if err := checkHash(d.Digest, what); err != nil {
		return err
	}
	if d.Size < 0 || d.Size > maxBlobSize {
		return fault.Errorf(fault.Integrity, "%s %s: size %d is out of range", what, d.Digest, d.Size)
	}
	return nil
}

// parsePlatform turns "os/arch[/variant]" ("" = this host) into a Platform.
func parsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
		return v1.Platform{}, usage(fmt.Sprintf("platform %q is not os/arch[/variant]", s), "use e.g. linux/amd64 or linux/arm64/v8")
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// variantMatches treats an unrequested variant as a wildcard, and arm64's
// default variant v8 as equal to none.
func variantMatches(want, have v1.Platform) bool {
	if want.Variant == "" || want.Variant == have.Variant {
		return true
	}
	return want.Architecture == "arm64" && have.Variant == "" && want.Variant == "v8"
}

// choosePlatform picks the index entry for want. An exact variant match wins
// over a wildcard one; entries without a platform (attestations) are skipped.
func choosePlatform(idx *v1.IndexManifest, want v1.Platform, where string) (v1.Descriptor, error) {
	var wildcard *v1.Descriptor
	var have []string
	for i, d := range idx.Manifests {
		p := d.Platform
		if p == nil || p.OS == "unknown" {
			continue
		}
		have = append(have, platformString(*p))
		if p.OS != want.OS || p.Architecture != want.Architecture || !variantMatches(want, *p) {
			continue
		}
		if p.Variant == want.Variant {
			return idx.Manifests[i], nil
		}
		if wildcard == nil {
			wildcard = &idx.Manifests[i]
		}
	}
	if wildcard != nil {
		return *wildcard, nil
	}
	sort.Strings(have)
	avail := strings.Join(have, ", ")
	if avail == "" {
		avail = "none"
	}
	return v1.Descriptor{}, fault.WithHint(
		fault.Errorf(fault.Usage, "%s: no image for platform %s (available: %s)", where, platformString(want), avail),
		fault.Usage, "choose one of the available platforms with --platform")
}

// configPlatform reads os/arch/variant from a config file; "" if absent.
func configPlatform(raw []byte) string {
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if json.Unmarshal(raw, &c) != nil || c.OS == "" || c.Architecture == "" {
		return ""
	}
	return platformString(v1.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant})
}
