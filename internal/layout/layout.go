// Package layout reads and writes the pieces of an OCI image layout that
// unpack and resolve share: index.json, oci-layout, blob paths, and the
// diffah/ folder where a partial layout keeps its sidecar and patches.
package layout

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/verify"
)

const (
	// SidecarFile is where a partial layout keeps the archive's sidecar.
	SidecarFile = "diffah/sidecar.json"
	// SignatureFile keeps the sidecar's signature when there was one.
	SignatureFile = "diffah/sidecar.json.sig"
	// IndexFile and LayoutFile are an OCI layout's two fixed files;
	// LayoutContent is what LayoutFile says (without a trailing newline).
	IndexFile     = "index.json"
	LayoutFile    = "oci-layout"
	LayoutContent = `{"imageLayoutVersion":"1.0.0"}`
	// BlobDir is where, under a layout's root, sha256 blobs live.
	BlobDir = "blobs/sha256"
	// RefNameAnnotation carries the image name in index.json.
	RefNameAnnotation = "org.opencontainers.image.ref.name"
	// NameAnnotation also carries the image name, for tools that use
	// ref.name for tags.
	NameAnnotation = "io.diffah.image.name"
)

// CheckDigest refuses a digest that must not become a path or be trusted:
// anything but sha256 with exactly 64 lowercase hex digits (so no "..",
// "/" or other algorithm can reach the file system). Every digest read
// from an untrusted place (sidecar, index.json, manifest, plan) is checked
// with it before it names a file. The error is fault.Integrity and names
// what.
func CheckDigest(d digest.Digest, what string) error {
	// Algorithm() and Encoded() panic on a digest without ':', so the
	// prefix is checked on the string first.
	if !strings.HasPrefix(string(d), "sha256:") {
		return fault.Errorf(fault.Integrity, "%s: digest %.80q: only sha256 digests are supported", what, string(d))
	}
	if err := d.Validate(); err != nil {
		return fault.Errorf(fault.Integrity, "%s: digest %.80q is malformed: %v", what, string(d), err)
	}
	return nil
}

// MaxBlobSize bounds every size read from an untrusted place (a sidecar
// entry or blob, a patch's uncompressed tar, a plan, an index.json or
// manifest descriptor): 1 TiB, far above any real layer. With at most 2^20
// blobs of at most MaxBlobSize each, every sum of sizes a reader forms
// (progress totals, inspect's totals) stays below 2^60 and cannot overflow
// an int64.
const MaxBlobSize = 1 << 40

// CheckSize refuses a size no real blob has: negative, or over
// MaxBlobSize. Every size from untrusted input passes it at parse time,
// before anything adds it up or reads that many bytes. The error is
// fault.Integrity and names what.
func CheckSize(size int64, what string) error {
	if size < 0 {
		return fault.Errorf(fault.Integrity, "%s: negative size %d", what, size)
	}
	if size > MaxBlobSize {
		return fault.Errorf(fault.Integrity, "%s: size %d is larger than any real blob (limit %d)", what, size, int64(MaxBlobSize))
	}
	return nil
}

// BlobPath is where a blob lives in the layout at dir. d must have passed
// CheckDigest.
func BlobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// PatchPath is where a partial layout keeps a patch payload.
func PatchPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "diffah", "patches", d.Encoded())
}

// Descriptor is an index.json entry.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      digest.Digest     `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Index is index.json.
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Entry returns an index entry naming an image.
func Entry(mediaType string, d digest.Digest, size int64, name string) Descriptor {
	return Descriptor{MediaType: mediaType, Digest: d, Size: size,
		Annotations: map[string]string{RefNameAnnotation: name, NameAnnotation: name}}
}

// WriteIndex writes oci-layout and index.json into dir.
func WriteIndex(dir string, manifests []Descriptor) error {
	if err := WriteFile(filepath.Join(dir, LayoutFile), []byte(LayoutContent+"\n")); err != nil {
		return err
	}
	idx := Index{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: manifests}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, IndexFile), append(b, '\n'))
}

// ReadIndex reads dir/index.json; every entry's digest has passed
// CheckDigest and its size CheckSize.
func ReadIndex(dir string) (*Index, error) {
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, fault.Errorf(fault.Env, "reading %s: %w", filepath.Join(dir, IndexFile), err)
	}
	var idx Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fault.Errorf(fault.Integrity, "%s: %w", filepath.Join(dir, IndexFile), err)
	}
	// Its digests become paths and its sizes read lengths: both are
	// checked here, before any caller uses them.
	for i, d := range idx.Manifests {
		what := fmt.Sprintf("%s: manifest %d", filepath.Join(dir, IndexFile), i)
		if err := CheckDigest(d.Digest, what); err != nil {
			return nil, err
		}
		if err := CheckSize(d.Size, what); err != nil {
			return nil, err
		}
	}
	return &idx, nil
}

// WriteFile writes a small file and syncs it.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fault.Errorf(fault.Env, "creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fault.Errorf(fault.Env, "creating %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fault.Errorf(fault.Env, "writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fault.Errorf(fault.Env, "writing %s: %w", path, err)
	}
	return nil
}

// WriteVerified streams r into a new file at path, checking size and
// sha256 as it goes. On any error the file is removed.
func WriteVerified(path string, r io.Reader, d digest.Digest, size int64, what string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fault.Errorf(fault.Env, "creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fault.Errorf(fault.Env, "creating %s: %w", path, err)
	}
	_, err = verify.Copy(f, r, d, size, what)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fault.Errorf(fault.Env, "writing %s: %w", path, cerr)
	}
	if err != nil {
		os.Remove(path)
		if fault.KindOf(err, 0) == 0 {
			err = fault.Errorf(fault.Env, "writing %s: %w", path, err)
		}
		return err
	}
	return nil
}

// VerifyFile checks that the file at path has the given size and sha256.
func VerifyFile(path string, d digest.Digest, size int64, what string) error {
	f, err := os.Open(path)
	if err != nil {
		return fault.Errorf(fault.Env, "%s: %w", what, err)
	}
	defer f.Close()
	if _, err := verify.Copy(io.Discard, f, d, size, what); err != nil {
		return err
	}
	return nil
}

// Exists reports whether path exists.
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
