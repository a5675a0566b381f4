package imgref

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestWriteLinksFrom: with LinkFrom naming the source layout, oci: and
// dir: outputs get its blobs as hard links (same inode: no second copy);
// without it, or where the file there is not of the blob's size, the
// blob is copied. Every output reads back as the same image.
func TestWriteLinksFrom(t *testing.T) {
	want := fixture(t, types.OCIManifestSchema1, "linux/amd64", "link", "gzip", "tar", "zstd")
	for _, to := range []string{OCI, Dir} {
		t.Run(to, func(t *testing.T) {
			dir := t.TempDir()
			srcDir := filepath.Join(dir, "src")
			src := refFor(srcDir, OCI, "v1")
			mustWrite(t, src, want.image(t), Options{})
			a := mustOpen(t, src, Options{})
			layers, err := a.Layers()
			if err != nil {
				t.Fatal(err)
			}
			var hexes []string
			for _, l := range layers {
				d, _ := l.Digest()
				hexes = append(hexes, d.Hex)
			}
			srcLayout := filepath.Join(srcDir, "layout")
			srcBlob := func(hex string) string { return filepath.Join(srcLayout, "blobs", "sha256", hex) }
			outBlob := func(ref string, hex string) string {
				r, err := Parse(ref)
				if err != nil {
					t.Fatal(err)
				}
				if r.Transport == Dir {
					return filepath.Join(r.Path, hex)
				}
				return filepath.Join(r.Path, "blobs", "sha256", hex)
			}
			linked := func(r string, hex string) bool {
				s, err1 := os.Stat(srcBlob(hex))
				o, err2 := os.Stat(outBlob(r, hex))
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				return os.SameFile(s, o)
			}

			dst := refFor(filepath.Join(dir, "linked"), to, "v2")
			mustWrite(t, dst, a, Options{LinkFrom: srcLayout})
			assertSame(t, mustOpen(t, dst, Options{}), want)
			for i, hex := range hexes {
				if !linked(dst, hex) {
					t.Errorf("layer %d: copied, want a link to the source's file", i)
				}
			}

			plain := refFor(filepath.Join(dir, "copied"), to, "v3")
			mustWrite(t, plain, a, Options{})
			assertSame(t, mustOpen(t, plain, Options{}), want)
			for i, hex := range hexes {
				if linked(plain, hex) {
					t.Errorf("layer %d: linked without LinkFrom", i)
				}
			}

			// A LinkFrom layout whose file for the first layer is a byte
			// short: that layer is copied from the image, the others
			// linked from there.
			other := filepath.Join(dir, "other")
			os.MkdirAll(filepath.Join(other, "blobs", "sha256"), 0o755)
			for i, hex := range hexes {
				b, _ := os.ReadFile(srcBlob(hex))
				if i == 0 {
					b = b[:len(b)-1]
				}
				os.WriteFile(filepath.Join(other, "blobs", "sha256", hex), b, 0o644)
			}
			mixed := refFor(filepath.Join(dir, "mixed"), to, "v4")
			mustWrite(t, mixed, a, Options{LinkFrom: other})
			assertSame(t, mustOpen(t, mixed, Options{}), want)
			for i, hex := range hexes {
				o, _ := os.Stat(outBlob(mixed, hex))
				s, _ := os.Stat(filepath.Join(other, "blobs", "sha256", hex))
				if got := os.SameFile(s, o); got != (i > 0) {
					t.Errorf("layer %d: linked %v, want %v", i, got, i > 0)
				}
			}
		})
	}
}
