package imgref

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/internal/layout"
)

// blobName is where an OCI layout keeps a blob. Digests come from untrusted
// JSON, so they pass layout.CheckDigest before becoming paths.
func blobName(h v1.Hash) (string, error) {
	if err := checkHash(h, "blob"); err != nil {
		return "", err
	}
	return layout.BlobDir + "/" + h.Hex, nil
}

// checkHash is layout.CheckDigest for a ggcr hash.
func checkHash(h v1.Hash, what string) error {
	return layout.CheckDigest(Digest(h), what)
}

// readLayout opens the image tag names (or the only image) in an OCI layout
// held by fsys, resolving indexes by platform.
func readLayout(fsys files, tag string, want v1.Platform) (*storeImage, *resolved, error) {
	where := fsys.where()
	rc, err := fsys.open(layout.IndexFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fault.WithHint(fault.Errorf(fault.Env, "%s: not an OCI layout (no index.json): %w", where, err),
				fault.Env, "check the path and the transport (dir: and docker-archive: are different formats)")
		}
		return nil, nil, err
	}
	raw, err := readLimited(rc, maxManifestSize, where+": index.json")
	if err != nil {
		return nil, nil, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fault.Errorf(fault.Integrity, "%s: index.json: %w", where, err)
	}
	desc, err := selectTagged(idx, tag, where)
	if err != nil {
		return nil, nil, err
	}
	blob := func(h v1.Hash) (io.ReadCloser, error) {
		n, err := blobName(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return fsys.open(n)
	}
	fetch := func(d v1.Descriptor) ([]byte, error) {
		rc, err := blob(d.Digest)
		if err != nil {
			return nil, err
		}
		return readVerified(rc, d.Digest, d.Size, maxManifestSize, where+": manifest "+d.Digest.String())
	}
	res, err := resolveManifest(where, "index.json", desc, want, fetch)
	if err != nil {
		return nil, nil, err
	}
	img, err := newStoreImage(where, res.raw, res.desc.MediaType, blob)
	if err != nil {
		return nil, nil, err
	}
	img.blobSize = func(h v1.Hash) (int64, error) {
		n, err := blobName(h)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", where, err)
		}
		return fsys.statSize(n)
	}
	return img, res, nil
}

// selectTagged picks the index.json entry named tag, or the only entry when
// tag is "".
func selectTagged(idx *v1.IndexManifest, tag, where string) (v1.Descriptor, error) {
	var tags []string
	for _, d := range idx.Manifests {
		if n := d.Annotations[layout.RefNameAnnotation]; n != "" {
			tags = append(tags, n)
		}
	}
	sort.Strings(tags)
	avail := strings.Join(tags, ", ")
	if avail == "" {
		avail = "none"
	}
	if tag == "" {
		switch len(idx.Manifests) {
		case 1:
			return idx.Manifests[0], nil
		case 0:
			return v1.Descriptor{}, fault.Errorf(fault.Env, "%s: the layout holds no images", where)
		}
		return v1.Descriptor{}, fault.WithHint(
			fault.Errorf(fault.Usage, "%s: the layout holds %d images; name one with :TAG (tags: %s)", where, len(idx.Manifests), avail),
			fault.Usage, "use e.g. "+where+":"+firstOr(tags, "TAG"))
	}
	for _, d := range idx.Manifests {
		if d.Annotations[layout.RefNameAnnotation] == tag {
			return d, nil
		}
	}
	return v1.Descriptor{}, fault.Errorf(fault.Env, "%s: no image tagged %q (tags: %s)", where, tag, avail)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// writeOCI writes img into the layout at ref.Path. A new layout is built in a
// temporary sibling and renamed into place; an existing one gets its missing
// blobs (each via temp file + rename) and then a new index.json (likewise),
// so a failure never leaves index.json naming absent blobs.
func writeOCI(ctx context.Context, ref Ref, img v1.Image, o Options) error {
	src, err := collect(ctx, img, ref.String())
	if err != nil {
		return err
	}
	src.linkFrom(o.LinkFrom)
	log := o.logger()
	dir := ref.Path
	fresh, err := isFreshDir(dir)
	if err != nil {
		return err
	}
	if !fresh {
		if _, err := os.Stat(filepath.Join(dir, layout.LayoutFile)); err != nil {
			return fault.WithHint(fault.Errorf(fault.Usage, "%s: %s exists and is not an OCI layout; refusing to write into it", ref, dir),
				fault.Usage, "choose a new or empty directory")
		}
		return addToLayout(ctx, dir, ref.Tag, src, log)
	}
	return buildDir(dir, func(tmp string) error {
		return addToLayout(ctx, tmp, ref.Tag, src, log)
	})
}

// addToLayout writes src's blobs and an index.json entry into dir. Every
// blob the image references is verified, whether written now or found in
// place. (The caller holds the output's lock: no other run writes dir.)
func addToLayout(ctx context.Context, dir, tag string, src *source, log *slog.Logger) error {
	// Blobs go only into directories of the layout itself: a symlinked
	// blobs/ would have them written wherever it points.
	for _, d := range []string{"blobs", filepath.Join("blobs", "sha256")} {
		st, err := os.Lstat(filepath.Join(dir, d))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fault.Errorf(fault.Env, "%s: %w", filepath.Join(dir, d), err)
		}
		if !st.IsDir() {
			return fault.WithHint(fault.Errorf(fault.Integrity, "%s is not a directory (%s); refusing to write blobs through it", filepath.Join(dir, d), st.Mode().Type()),
				fault.Integrity, "the layout is damaged or not what it seems: write to a new layout")
		}
	}
	atomicdir.Sweep(filepath.Join(dir, "blobs", "sha256"))
	for _, b := range src.blobs {
		if err := writeBlobFile(ctx, filepath.Join(dir, "blobs", "sha256"), b, log); err != nil {
			return err
		}
	}
	mb := srcBlob{desc: v1.Descriptor{Digest: src.digest, Size: int64(len(src.raw))}, open: func() (io.ReadCloser, error) { return nopCloser(src.raw), nil }}
	if err := writeBlobFile(ctx, filepath.Join(dir, "blobs", "sha256"), mb, log); err != nil {
		return err
	}
	layoutPath := filepath.Join(dir, layout.LayoutFile)
	if _, err := os.Stat(layoutPath); err != nil {
		if err := atomicdir.WriteFile(layoutPath, strings.NewReader(layout.LayoutContent)); err != nil {
			return err
		}
	}
	idx := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	indexPath := filepath.Join(dir, layout.IndexFile)
	if raw, err := os.ReadFile(indexPath); err == nil {
		if idx, err = v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
			return fault.Errorf(fault.Integrity, "%s: %w", indexPath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fault.Errorf(fault.Env, "reading %s: %w", indexPath, err)
	}
	idx.Manifests = withEntry(idx.Manifests, src.descriptor(tag), tag)
	out, err := json.Marshal(idx)
	if err != nil {
		return fault.Errorf(fault.Internal, "encoding %s: %w", indexPath, err)
	}
	return atomicdir.WriteFile(indexPath, bytes.NewReader(out))
}

// withEntry replaces the entry carrying the same tag (or, untagged, the same
// untagged digest) with d, else appends it.
func withEntry(ms []v1.Descriptor, d v1.Descriptor, tag string) []v1.Descriptor {
	out := ms[:0:0]
	for _, m := range ms {
		name := m.Annotations[layout.RefNameAnnotation]
		if (tag != "" && name == tag) || (tag == "" && name == "" && m.Digest == d.Digest) {
			continue
		}
		out = append(out, m)
	}
	return append(out, d)
}

// ociArchiveEntries lays out src as the files of a single-image OCI layout.
func ociArchiveEntries(src *source, tag string) ([]tarEntry, error) {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{src.descriptor(tag)}}
	ib, err := json.Marshal(idx)
	if err != nil {
		return nil, fault.Errorf(fault.Internal, "encoding index.json: %w", err)
	}
	entries := []tarEntry{
		{name: "blobs/"}, {name: "blobs/sha256/"},
		bytesEntry(layout.LayoutFile, []byte(layout.LayoutContent)),
		bytesEntry(layout.IndexFile, ib),
		bytesEntry(layout.BlobDir+"/"+src.digest.Hex, src.raw),
	}
	for _, b := range src.blobs {
		entries = append(entries, tarEntry{name: "blobs/sha256/" + b.desc.Digest.Hex, size: b.desc.Size, open: b.open})
	}
	return entries, nil
}
