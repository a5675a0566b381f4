// Package sidecar owns diffah.json, the self-description that is the first
// entry of every delta archive. The sidecar names every image in the archive,
// what each of its blobs is (shipped, reused from the baseline or rebuilt from
// a patch), and pins the size and sha256 of every archive entry, so a reader
// can verify each entry while it streams.
//
// There is one parser, Parse, and it is strict: unknown major versions,
// unknown fields (within a known minor version), trailing data, malformed
// digests, inconsistent entries and unsafe names are all errors.
package sidecar

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/internal/strictjson"
	"github.com/diffah/diffah/recompress"
)

const (
	// EntryName is the archive entry holding the sidecar; it is always first.
	EntryName = "diffah.json"
	// Kind identifies a sidecar document.
	Kind = "diffah-delta"
	// Major and Minor are the newest format version this package reads
	// strictly (and writes when needed: see version.go). A reader
	// refuses another major version and tolerates unknown fields only from a
	// newer minor version.
	Major = 1
	Minor = MinorModelV3
	// MaxSize bounds the sidecar entry: sidecars come from untrusted media.
	MaxSize = 16 << 20
	// MaxImages and MaxBlobs bound what one archive may describe.
	MaxImages = 4096
	MaxBlobs  = 1 << 20
)

// Blob actions.
const (
	// Ship: the blob travels whole in the archive.
	Ship = "ship"
	// Reuse: the blob is taken from the baseline as is.
	Reuse = "reuse"
	// Patch: the blob is rebuilt from baseline layers and a patch entry.
	Patch = "patch"
)

// Blob roles.
const (
	RoleManifest = "manifest"
	RoleConfig   = "config"
	RoleLayer    = "layer"
)

// Sidecar is the content of diffah.json.
type Sidecar struct {
	Kind    string  `json:"kind"`
	Version string  `json:"version"`
	Tool    string  `json:"tool,omitempty"`
	Images  []Image `json:"images"`
	// Entries lists every archive entry after the sidecar (and its
	// signature), in archive order.
	Entries []Entry `json:"entries"`
}

// Image is one image of the archive (one per plan).
type Image struct {
	Name     string    `json:"name"`
	Target   Target    `json:"target"`
	Baseline *Baseline `json:"baseline,omitempty"`
	// Blobs lists the manifest, the config and every layer, in that order.
	Blobs []Blob `json:"blobs"`
}

// Target names the image the consumer will rebuild.
type Target struct {
	Ref         string        `json:"ref"`
	Platform    string        `json:"platform,omitempty"`
	IndexDigest digest.Digest `json:"indexDigest,omitempty"`
	Manifest    Descriptor    `json:"manifest"`
}

// Baseline names the image the producer assumed the consumer holds.
type Baseline struct {
	Ref            string        `json:"ref,omitempty"`
	ManifestDigest digest.Digest `json:"manifestDigest,omitempty"`
}

// Descriptor is the part of an OCI descriptor diffah needs.
type Descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// Blob is one blob of a target image and how the consumer gets it.
type Blob struct {
	Descriptor
	Role   string        `json:"role"`
	DiffID digest.Digest `json:"diffID,omitempty"`
	Decision[PatchRef]
	// Entry is the archive entry holding the blob (Action Ship).
	Entry string `json:"entry,omitempty"`
	// FileCosts says, on a patched layer, what its files cost in the
	// patch (since 1.4; see files.go).
	FileCosts *FileCosts `json:"fileCosts,omitempty"`
}

// PatchSpec is what a patch reads and how its output is recompressed:
// the patch as a plan names it (plan.Patch), before pack computes it.
type PatchSpec struct {
	// Codec names the patch format (tarpatch.Codec).
	Codec string `json:"codec"`
	// Sources are the layers whose uncompressed tars the patch reads, in
	// the order the patch numbers them: baseline layers, and
	// layers the archive rebuilds earlier (Source.Target, since 1.5).
	Sources []Source `json:"sources"`
	// Recipe reproduces the target blob's compression; its fields are
	// validated by the recompress package.
	Recipe json.RawMessage `json:"recipe"`
}

// PatchRef describes a patch entry and what it needs.
type PatchRef struct {
	PatchSpec
	// Entry is the archive entry holding the patch payload, whose size and
	// digest the Entries list pins.
	Entry string `json:"entry"`
	// UncompressedSize is the size of the layer's uncompressed tar: the
	// decoder refuses to produce more (a decompression bomb).
	UncompressedSize int64 `json:"uncompressedSize"`
}

// Source is a layer a patch reads: a baseline layer, or (since 1.5) a
// layer this archive rebuilds earlier.
type Source struct {
	Descriptor
	DiffID digest.Digest `json:"diffID"`
	// Image names the bundle image whose baseline holds the layer, when
	// that is not the patched image's own (since 1.1).
	Image string `json:"image,omitempty"`
	// Target, when set, says the layer is not a baseline's but one of
	// the target layers of the named image of this archive (the patched
	// image itself, or another), which the archive ships or patches
	// earlier in sidecar order: the consumer rebuilds and verifies it
	// first (since 1.5, bundle codecs only: IsBundleTarCodec).
	Target string `json:"target,omitempty"`
}

// Entry is one archive entry after the sidecar.
type Entry struct {
	Name   string        `json:"name"`
	Size   int64         `json:"size"`
	Digest digest.Digest `json:"digest"`
}

// BlobEntryName is the archive entry name of a shipped blob.
func BlobEntryName(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }

// PatchEntryName is the archive entry name of a patch payload.
func PatchEntryName(d digest.Digest) string { return "patches/sha256/" + d.Encoded() }

// New returns an empty sidecar of the current version.
func New(tool string) *Sidecar {
	return &Sidecar{Kind: Kind, Version: fmt.Sprintf("%d.%d", Major, minorBase), Tool: tool}
}

// Marshal encodes the sidecar deterministically (indented, trailing
// newline) after validating it, so a writer cannot produce what Parse would
// refuse.
func (s *Sidecar) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("sidecar: refusing to write an invalid sidecar: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse decodes and validates a sidecar. It reads at most MaxSize bytes.
func Parse(r io.Reader) (*Sidecar, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "sidecar: reading %s: %w", EntryName, err)
	}
	if len(data) > MaxSize {
		return nil, fault.Errorf(fault.Integrity, "sidecar: %s is larger than %d bytes", EntryName, MaxSize)
	}
	return ParseBytes(data)
}

// ParseBytes is Parse on a byte slice.
func ParseBytes(data []byte) (*Sidecar, error) {
	var head struct {
		Kind    string `json:"kind"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fault.Errorf(fault.Integrity, "sidecar: %s is not a JSON object: %w", EntryName, err)
	}
	if head.Kind != Kind {
		return nil, fault.Errorf(fault.Integrity, "sidecar: kind is %q, want %q: this is not a diffah delta", head.Kind, Kind)
	}
	major, minor, err := ParseVersion(head.Version)
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "sidecar: %w", err)
	}
	if major != Major {
		return nil, &fault.Error{Kind: fault.Integrity,
			Err:  fmt.Errorf("sidecar: unsupported format version %s (this diffah reads %d.x)", head.Version, Major),
			Hint: "use the diffah release that wrote the archive, or a newer one"}
	}
	var s Sidecar
	if err := strictjson.Unmarshal(data, &s, minor > Minor); err != nil {
		return nil, fault.Errorf(fault.Integrity, "sidecar: %s: %w", EntryName, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// ParseVersion splits "MAJOR.MINOR".
func ParseVersion(v string) (major, minor int, err error) {
	a, b, ok := strings.Cut(v, ".")
	if ok {
		major, err = strconv.Atoi(a)
		if err == nil {
			minor, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || major < 0 || minor < 0 || a != strconv.Itoa(major) || b != strconv.Itoa(minor) {
		return 0, 0, fmt.Errorf("version %q is not of the form MAJOR.MINOR", v)
	}
	return major, minor, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$`)

// ValidName reports whether s may name an image in a bundle. Names end up
// in index.json annotations and in CLI arguments (NAME=REF), so they are
// restricted to a conservative set.
func ValidName(s string) bool {
	return nameRE.MatchString(s) && !strings.Contains(s, "=") && !strings.Contains(s, "..")
}

func (d Descriptor) check(what string) error {
	if err := layout.CheckDigest(d.Digest, what); err != nil {
		return err
	}
	if err := layout.CheckSize(d.Size, what+" "+d.Digest.String()); err != nil {
		return err
	}
	if d.MediaType == "" || len(d.MediaType) > 255 {
		return fmt.Errorf("%s %s: missing or oversized media type", what, d.Digest)
	}
	return nil
}

// Validate checks the sidecar's internal consistency. Every failure is a
// fault.Integrity error.
func (s *Sidecar) Validate() error {
	if err := s.validate(); err != nil {
		return fault.Errorf(fault.Integrity, "sidecar: %w", err)
	}
	return nil
}

func (s *Sidecar) validate() error {
	if s.Kind != Kind {
		return fmt.Errorf("kind is %q, want %q", s.Kind, Kind)
	}
	if major, _, err := ParseVersion(s.Version); err != nil {
		return err
	} else if major != Major {
		return fmt.Errorf("unsupported format version %s", s.Version)
	}
	if len(s.Images) == 0 {
		return errors.New("no images")
	}
	if len(s.Images) > MaxImages {
		return fmt.Errorf("%d images, more than the limit of %d", len(s.Images), MaxImages)
	}
	if len(s.Entries) > MaxBlobs {
		return fmt.Errorf("%d entries, more than the limit of %d", len(s.Entries), MaxBlobs)
	}
	entries := make(map[string]Entry, len(s.Entries))
	for i, e := range s.Entries {
		if err := layout.CheckDigest(e.Digest, fmt.Sprintf("entry %d (%.80q)", i, e.Name)); err != nil {
			return err
		}
		if err := layout.CheckSize(e.Size, fmt.Sprintf("entry %q", e.Name)); err != nil {
			return err
		}
		if e.Name != BlobEntryName(e.Digest) && e.Name != PatchEntryName(e.Digest) {
			return fmt.Errorf("entry %q: name does not match its digest %s (want %q or %q)", e.Name, e.Digest, BlobEntryName(e.Digest), PatchEntryName(e.Digest))
		}
		if _, dup := entries[e.Name]; dup {
			return fmt.Errorf("entry %q listed twice", e.Name)
		}
		entries[e.Name] = e
	}
	used := make(map[string]bool, len(entries))
	names := make(map[string]bool, len(s.Images))
	blobs := 0
	for _, im := range s.Images {
		if !ValidName(im.Name) {
			return fmt.Errorf("image name %q is not valid (letters, digits and ._/:@- only)", im.Name)
		}
		if names[im.Name] {
			return fmt.Errorf("image name %q used twice", im.Name)
		}
		names[im.Name] = true
		if err := im.validate(entries, used); err != nil {
			return fmt.Errorf("image %q: %w", im.Name, err)
		}
	}
	// A blob may come from another image's baseline: that image must be
	// in the bundle, and not be the blob's own.
	for _, im := range s.Images {
		for _, b := range im.Blobs {
			refs := []string{b.From}
			if b.Patch != nil {
				for _, src := range b.Patch.Sources {
					refs = append(refs, src.Image)
				}
			}
			for _, r := range refs {
				if r != "" && (r == im.Name || !names[r]) {
					return fmt.Errorf("image %q: blob %s refers to the baseline of image %q, which is not another image of this archive", im.Name, b.Digest, r)
				}
			}
		}
		blobs += len(im.Blobs)
		if blobs > MaxBlobs {
			return fmt.Errorf("more than %d blobs", MaxBlobs)
		}
	}
	if err := s.checkTargetSources(); err != nil {
		return err
	}
	for _, e := range s.Entries {
		if !used[e.Name] {
			return fmt.Errorf("entry %q is not used by any blob", e.Name)
		}
	}
	return nil
}

// checkTargetSources makes sure every target-layer source is a layer the
// archive ships or patches, of the image it names, and comes before the
// layer it rebuilds (first occurrences, in sidecar order): the consumer
// can rebuild layers in that order, and no layer can depend on itself.
func (s *Sidecar) checkTargetSources() error {
	type at struct{ image, blob int }
	first := map[digest.Digest]at{}
	for i, im := range s.Images {
		for j, b := range im.Blobs {
			if _, ok := first[b.Digest]; !ok && b.Role == RoleLayer {
				first[b.Digest] = at{i, j}
			}
		}
	}
	before := func(a, b at) bool { return a.image < b.image || a.image == b.image && a.blob < b.blob }
	for _, im := range s.Images {
		for _, b := range im.Blobs {
			if b.Patch == nil {
				continue
			}
			for _, src := range b.Patch.Sources {
				if src.Target == "" {
					continue
				}
				if _, minor, _ := ParseVersion(s.Version); minor < MinorFleet {
					return fmt.Errorf("image %q: layer %s: a target-layer patch source needs format 1.%d, this sidecar says %s", im.Name, b.Digest, MinorFleet, s.Version)
				}
				t, ok := s.Image(src.Target)
				if !ok {
					return fmt.Errorf("image %q: layer %s: patch source %s is a layer of image %q, which is not in this archive", im.Name, b.Digest, src.Digest, src.Target)
				}
				found := false
				for _, tb := range t.Blobs {
					if tb.Role == RoleLayer && tb.Digest == src.Digest && tb.DiffID == src.DiffID && tb.Size == src.Size && (tb.Action == Ship || tb.Action == Patch) {
						found = true
					}
				}
				if !found {
					return fmt.Errorf("image %q: layer %s: patch source %s is not a shipped or patched layer of image %q with that diffID and size", im.Name, b.Digest, src.Digest, src.Target)
				}
				if !before(first[src.Digest], first[b.Digest]) {
					return fmt.Errorf("image %q: layer %s: patch source %s (a layer of image %q) does not come before it in the archive", im.Name, b.Digest, src.Digest, src.Target)
				}
			}
		}
	}
	return nil
}

func (im *Image) validate(entries map[string]Entry, used map[string]bool) error {
	if err := im.Target.Manifest.check("target manifest"); err != nil {
		return err
	}
	if im.Target.IndexDigest != "" {
		if err := layout.CheckDigest(im.Target.IndexDigest, "target index"); err != nil {
			return err
		}
	}
	if im.Baseline != nil && im.Baseline.ManifestDigest != "" {
		if err := layout.CheckDigest(im.Baseline.ManifestDigest, "baseline manifest"); err != nil {
			return err
		}
	}
	if len(im.Blobs) < 2 {
		return errors.New("needs at least a manifest and a config blob")
	}
	seen := make(map[digest.Digest]bool, len(im.Blobs))
	for i, b := range im.Blobs {
		want := RoleLayer
		switch i {
		case 0:
			want = RoleManifest
		case 1:
			want = RoleConfig
		}
		if b.Role != want {
			return fmt.Errorf("blob %d has role %q, want %q", i, b.Role, want)
		}
		if err := b.check(entries, used); err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		// A layer may repeat in a manifest (the same empty layer twice);
		// manifest and config digests must not collide with anything.
		if seen[b.Digest] && b.Role != RoleLayer {
			return fmt.Errorf("blob %s listed twice", b.Digest)
		}
		seen[b.Digest] = true
	}
	m := im.Blobs[0]
	if m.Descriptor != im.Target.Manifest {
		return fmt.Errorf("manifest blob %s does not match the target manifest %s", m.Digest, im.Target.Manifest.Digest)
	}
	if m.Action != Ship {
		return fmt.Errorf("manifest %s must be shipped, not %q", m.Digest, m.Action)
	}
	return nil
}

func (b *Blob) check(entries map[string]Entry, used map[string]bool) error {
	if err := b.Descriptor.check(b.Role); err != nil {
		return err
	}
	if b.DiffID != "" {
		if err := layout.CheckDigest(b.DiffID, "diffID"); err != nil {
			return err
		}
	}
	needEntry := func(name string, d digest.Digest, size int64) error {
		e, ok := entries[name]
		if !ok {
			return fmt.Errorf("entry %q is not in the entry list", name)
		}
		if d != "" && (e.Digest != d || e.Size != size) {
			return fmt.Errorf("entry %q is %s/%d bytes, blob says %s/%d", name, e.Digest, e.Size, d, size)
		}
		used[name] = true
		return nil
	}
	if b.From != "" && b.Action != Reuse {
		return fmt.Errorf("%s blob names a baseline to reuse it from", b.Action)
	}
	if b.FileCosts != nil && b.Action != Patch {
		return fmt.Errorf("%s blob carries fileCosts (only patched layers do)", b.Action)
	}
	if b.Recipe != nil && (b.Action != Reuse || b.Role != RoleLayer || b.DiffID == "" || len(b.Recipe) == 0 || b.Recipe[0] != '{') {
		return errors.New("a blob-level recipe belongs only to a reused layer with a diffID, as a JSON object")
	}
	switch b.Action {
	case Ship:
		if b.Patch != nil {
			return errors.New("shipped blob carries a patch")
		}
		if b.Entry != BlobEntryName(b.Digest) {
			return fmt.Errorf("entry %q does not name this blob (want %q)", b.Entry, BlobEntryName(b.Digest))
		}
		return needEntry(b.Entry, b.Digest, b.Size)
	case Reuse:
		if b.Entry != "" || b.Patch != nil {
			return errors.New("reused blob names an entry or a patch")
		}
		return nil
	case Patch:
		if b.Entry != "" {
			return errors.New("patched blob names a blob entry")
		}
		p := b.Patch
		if p == nil {
			return errors.New("action patch without patch")
		}
		if b.Role != RoleLayer || b.DiffID == "" {
			return errors.New("only layers with a diffID can be patched")
		}
		if len(b.Reason) > 4096 {
			return errors.New("reason longer than 4096 bytes")
		}
		if p.Codec == "" || len(p.Codec) > 64 {
			return errors.New("patch without codec")
		}
		if len(p.Sources) == 0 || len(p.Sources) > 64 {
			return fmt.Errorf("patch has %d sources (1 to 64 allowed)", len(p.Sources))
		}
		targets := 0
		for _, src := range p.Sources {
			if err := src.Descriptor.check("patch source"); err != nil {
				return err
			}
			if src.Target != "" {
				targets++
				if src.Image != "" {
					return fmt.Errorf("patch source %s names both a baseline (image %q) and a target layer (of image %q)", src.Digest, src.Image, src.Target)
				}
				if !IsBundleTarCodec(p.Codec) {
					return fmt.Errorf("patch source %s is a target layer of image %q, which only codecs %q and %q may read (this patch is %q)", src.Digest, src.Target, BundleTarCodec, BundleTarCodecV3, p.Codec)
				}
			}
			if err := layout.CheckDigest(src.DiffID, "patch source "+src.Digest.String()+" diffID"); err != nil {
				return err
			}
		}
		if IsBundleTarCodec(p.Codec) && targets == 0 {
			return fmt.Errorf("codec %q without a target-layer source", p.Codec)
		}
		if err := layout.CheckSize(p.UncompressedSize, "patch uncompressedSize"); err != nil {
			return err
		}
		if len(p.Recipe) == 0 || p.Recipe[0] != '{' {
			return errors.New("patch recipe is not a JSON object")
		}
		// The one recipe parser: its limits (pgzip blocks, zstd
		// concurrency) bound what recompression may allocate.
		if _, err := recompress.ParseRecipe(p.Recipe); err != nil {
			return fmt.Errorf("patch recipe: %w", err)
		}
		if !strings.HasPrefix(p.Entry, "patches/sha256/") {
			return fmt.Errorf("patch entry %q is not under patches/sha256/", p.Entry)
		}
		if err := needEntry(p.Entry, "", 0); err != nil {
			return err
		}
		if b.FileCosts != nil {
			return b.FileCosts.check()
		}
		return nil
	default:
		return fmt.Errorf("unknown action %q (want ship, reuse or patch)", b.Action)
	}
}

// Image returns the image with the given name.
func (s *Sidecar) Image(name string) (*Image, bool) {
	for i := range s.Images {
		if s.Images[i].Name == name {
			return &s.Images[i], true
		}
	}
	return nil, false
}

// EntryByName returns the entry with the given name.
func (s *Sidecar) EntryByName(name string) (Entry, bool) {
	for _, e := range s.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}
