package imgref

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/atomicdir"
)

// dirVersion is the version file of containers/image's "dir" format.
const dirVersion = "Directory Transport Version: 1.1\n"

// readDir opens a dir: image. manifest.json holds the manifest verbatim;
// when it is an index, the chosen instance's manifest is <hex>.manifest.json,
// as containers/image stores it. Blobs are files named by their hex digest.
func readDir(ctx context.Context, ref Ref, want v1.Platform) (*storeImage, *resolved, error) {
	where := ref.String()
	fsys := dirFiles{ctx: ctx, root: ref.Path, ref: where}
	vrc, err := fsys.open("version")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fault.WithHint(err, fault.Env, "a dir: image is what `skopeo copy ... dir:DIR` writes; check the path and transport")
		}
		return nil, nil, err
	}
	vb, err := readLimited(vrc, 4<<10, where+": version")
	if err != nil {
		return nil, nil, err
	}
	if !strings.HasPrefix(string(vb), "Directory Transport Version: 1.") {
		return nil, nil, fault.Errorf(fault.Integrity, "%s: unsupported version file %q", where, strings.TrimSpace(string(vb)))
	}
	rc, err := fsys.open("manifest.json")
	if err != nil {
		return nil, nil, err
	}
	top, err := readLimited(rc, maxManifestSize, where+": manifest.json")
	if err != nil {
		return nil, nil, err
	}
	topDesc := v1.Descriptor{MediaType: sniffMediaType(top), Digest: sha256Hash(top), Size: int64(len(top))}
	fetch := func(d v1.Descriptor) ([]byte, error) {
		if d.Digest == topDesc.Digest {
			return top, nil
		}
		if _, err := blobName(d.Digest); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		rc, err := fsys.open(d.Digest.Hex + ".manifest.json")
		if err != nil {
			return nil, err
		}
		return readVerified(rc, d.Digest, d.Size, maxManifestSize, where+": manifest "+d.Digest.String())
	}
	res, err := resolveManifest(where, "manifest.json", topDesc, want, fetch)
	if err != nil {
		return nil, nil, err
	}
	blob := func(h v1.Hash) (io.ReadCloser, error) {
		if _, err := blobName(h); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return fsys.open(h.Hex)
	}
	img, err := newStoreImage(where, res.raw, res.desc.MediaType, blob)
	if err != nil {
		return nil, nil, err
	}
	img.blobSize = func(h v1.Hash) (int64, error) {
		if _, err := blobName(h); err != nil {
			return 0, fmt.Errorf("%s: %w", where, err)
		}
		return fsys.statSize(h.Hex)
	}
	return img, res, nil
}

// writeDir writes src as a dir: image, built in a temporary sibling and
// renamed into place. An existing dir: image is replaced; any other
// non-empty directory is left alone.
func writeDir(ctx context.Context, ref Ref, src *source, log *slog.Logger) error {
	fresh, err := isFreshDir(ref.Path)
	if err != nil {
		return err
	}
	if !fresh {
		if _, err := os.Stat(filepath.Join(ref.Path, "version")); err != nil {
			return fault.WithHint(fault.Errorf(fault.Usage, "%s: %s exists and is not a dir: image; refusing to replace it", ref, ref.Path),
				fault.Usage, "choose a new or empty directory")
		}
	}
	return buildDir(ref.Path, func(tmp string) error {
		for _, b := range src.blobs {
			if err := writeBlobFile(ctx, tmp, b, log); err != nil {
				return err
			}
		}
		if err := atomicdir.WriteFile(filepath.Join(tmp, "manifest.json"), bytes.NewReader(src.raw)); err != nil {
			return err
		}
		return atomicdir.WriteFile(filepath.Join(tmp, "version"), strings.NewReader(dirVersion))
	})
}
