package imgref

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/internal/ctxio"
	"github.com/diffah/diffah/internal/layout"
)

// source is an image ready to be written: its verbatim manifest and config,
// and an opener per distinct blob (config first, then layers in manifest
// order) that verifies digest and size as it streams.
type source struct {
	raw      []byte
	mt       types.MediaType
	digest   v1.Hash
	manifest *v1.Manifest
	config   []byte
	blobs    []srcBlob
}

type srcBlob struct {
	desc v1.Descriptor
	open func() (io.ReadCloser, error)
	// file, when set, holds the blob, verified by this process
	// (Options.LinkFrom): writeBlobFile links it where it can.
	file string
}

// linkFrom sets the file of each blob that the layout dir holds (a
// regular file of the blob's size under its digest); "" sets none.
func (s *source) linkFrom(dir string) {
	if dir == "" {
		return
	}
	for i, b := range s.blobs {
		p := layout.BlobPath(dir, Digest(b.desc.Digest))
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() && st.Size() == b.desc.Size {
			s.blobs[i].file = p
		}
	}
}

// descriptor is the index entry naming the image, tagged when tag != "".
func (s *source) descriptor(tag string) v1.Descriptor {
	d := v1.Descriptor{MediaType: s.mt, Digest: s.digest, Size: int64(len(s.raw))}
	if tag != "" {
		d.Annotations = map[string]string{layout.RefNameAnnotation: tag}
	}
	return d
}

func collect(ctx context.Context, img v1.Image, where string) (*source, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the manifest to write: %w", where, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the manifest media type: %w", where, err)
	}
	if mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
		return nil, fault.Errorf(fault.Usage, "%s: cannot write a manifest of media type %q", where, mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "%s: manifest to write: %w", where, err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the config to write: %w", where, err)
	}
	if got := sha256Hash(cfg); got != m.Config.Digest || int64(len(cfg)) != m.Config.Size {
		return nil, fault.Errorf(fault.Integrity, "%s: config is %s (%d bytes) but the manifest names %s (%d bytes)", where, got, len(cfg), m.Config.Digest, m.Config.Size)
	}
	src := &source{raw: raw, mt: mt, digest: sha256Hash(raw), manifest: m, config: cfg}
	src.blobs = append(src.blobs, srcBlob{desc: m.Config, open: func() (io.ReadCloser, error) { return nopCloser(cfg), nil }})
	seen := map[v1.Hash]bool{m.Config.Digest: true}
	for _, d := range m.Layers {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		if _, err := blobName(d.Digest); err != nil {
			return nil, fmt.Errorf("%s: layer: %w", where, err)
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", where, d.Digest, err)
		}
		what := where + ": layer " + d.Digest.String()
		src.blobs = append(src.blobs, srcBlob{desc: d, open: func() (io.ReadCloser, error) {
			rc, err := l.Compressed()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			vr, err := verifyReader(rc, d.Digest, d.Size, what)
			if err != nil {
				return nil, err
			}
			return readCloser{ctxio.Reader{Ctx: ctx, R: vr}, vr}, nil
		}})
	}
	return src, nil
}

// writeBlobFile stores b as dir/<hex>. A file already there (an existing
// layout) is kept only after it hashes to the digest and size: damaged
// bytes of the same size, a link or anything else is replaced atomically
// by the verified blob. b.open verifies as it streams.
func writeBlobFile(ctx context.Context, dir string, b srcBlob, log *slog.Logger) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := filepath.Join(dir, b.desc.Digest.Hex)
	if st, err := os.Lstat(p); err == nil {
		switch {
		case st.IsDir():
			return fault.WithHint(fault.Errorf(fault.Integrity, "%s: a directory where blob %s belongs", p, b.desc.Digest), fault.Integrity,
				"the layout is damaged: remove "+p+" or write to a new layout")
		case st.Mode().IsRegular():
			err := layout.VerifyFile(p, Digest(b.desc.Digest), b.desc.Size, "existing blob "+p)
			if err == nil {
				return nil
			}
			if fault.KindOf(err, 0) != fault.Integrity {
				return err
			}
			log.Warn("replacing a damaged blob in the output layout", "blob", b.desc.Digest.String(), "path", p, "error", err.Error())
		default:
			log.Warn("replacing a blob that is not a regular file", "blob", b.desc.Digest.String(), "path", p, "mode", st.Mode().String())
		}
	}
	if b.file != "" && !layout.Exists(p) {
		// A link appears whole or not at all, and the file was synced
		// when it was written; the layout's commit syncs the directory.
		if err := os.Link(b.file, p); err == nil {
			return nil
		}
	}
	rc, err := b.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return atomicdir.WriteFile(p, rc)
}

// isFreshDir reports whether dir is absent or an empty directory.
func isFreshDir(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fault.Errorf(fault.Env, "reading %s: %w", dir, err)
	}
	return len(ents) == 0, nil
}

// buildDir fills a temporary sibling of final with fill and moves it into
// place, replacing what is there (an empty directory, or what the caller
// checked may be replaced) in one atomic exchange.
func buildDir(final string, fill func(tmp string) error) error {
	d, err := atomicdir.New(final)
	if err != nil {
		return err
	}
	defer d.Abort()
	if err := fill(d.Path); err != nil {
		return err
	}
	return d.Commit(true)
}

// tarEntry is one member of a deterministic tar. A name ending in "/" with
// no opener is a directory.
type tarEntry struct {
	name string
	size int64
	open func() (io.ReadCloser, error)
}

func bytesEntry(name string, b []byte) tarEntry {
	return tarEntry{name: name, size: int64(len(b)), open: func() (io.ReadCloser, error) { return nopCloser(b), nil }}
}

// writeTarFile writes entries to dest as a deterministic tar: names sorted
// and unique, mtime 0, uid/gid 0, no user names, mode 0644 for files and
// 0755 for directories. It goes through a temporary sibling file and rename.
func writeTarFile(ctx context.Context, dest string, entries []tarEntry) error {
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	ts := &tarStream{ctx: ctx, entries: entries}
	err := atomicdir.WriteFile(dest, ts)
	if ts.pr != nil {
		// Unblocks the producer if the copy stopped early (e.g. disk full).
		ts.pr.CloseWithError(errors.New("tar output aborted"))
	}
	return err
}

// tarStream produces the tar lazily so atomicdir.WriteFile can copy it like any
// reader; each entry is opened only when reached.
type tarStream struct {
	ctx     context.Context
	entries []tarEntry
	pr      *io.PipeReader
}

func (t *tarStream) Read(p []byte) (int, error) {
	if t.pr == nil {
		pr, pw := io.Pipe()
		t.pr = pr
		go func() {
			var err error
			defer func() { pw.CloseWithError(err) }()
			// A bug here must not kill the process with the temporary
			// output in place: it reaches the top as exit 70.
			defer fault.Recover(&err)
			err = t.write(pw)
		}()
	}
	return t.pr.Read(p)
}

func (t *tarStream) write(w io.Writer) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0).UTC()
	var last string
	for _, e := range t.entries {
		if e.name == last {
			continue
		}
		last = e.name
		if err := t.ctx.Err(); err != nil {
			return err
		}
		h := &tar.Header{Name: e.name, ModTime: epoch, Mode: 0o644, Typeflag: tar.TypeReg, Size: e.size, Format: tar.FormatPAX}
		if strings.HasSuffix(e.name, "/") && e.open == nil {
			h.Mode, h.Typeflag, h.Size = 0o755, tar.TypeDir, 0
		}
		if h.Size < 1<<33 && len(h.Name) < 100 {
			h.Format = tar.FormatUSTAR
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar header %s: %w", e.name, err)
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		rc, err := e.open()
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("tar entry %s: %w", e.name, err)
		}
		if n != e.size {
			return fault.Errorf(fault.Integrity, "tar entry %s: %d bytes, want %d", e.name, n, e.size)
		}
	}
	return tw.Close()
}
