package imgref

import (
	"io"
	"math/rand"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// bigFixture is a Docker image with one incompressible 32 MiB layer.
func bigFixture(b *testing.B) *memImage {
	content := make([]byte, 32<<20)
	rand.New(rand.NewSource(1)).Read(content)
	img := fixture(b, types.DockerManifestSchema2, "linux/amd64", "bench", "tar")
	raw := layerTar(b, "big", content)
	h := sha256Hash(raw)
	delete(img.blobs, img.m.Layers[0].Digest)
	img.blobs[h] = raw
	img.m.Layers[0] = v1.Descriptor{MediaType: types.DockerUncompressedLayer, Size: int64(len(raw)), Digest: h}
	img.raw = mustJSON(b, img.m)
	return img
}

// BenchmarkCopy measures Write to each local transport followed by Open and
// a verified read of every layer.
func BenchmarkCopy(b *testing.B) {
	src := bigFixture(b)
	for _, tr := range []string{OCI, OCIArchive, DockerArchive, Dir} {
		b.Run(tr, func(b *testing.B) {
			b.SetBytes(src.m.Layers[0].Size)
			for i := 0; i < b.N; i++ {
				ref := refFor(filepath.Join(b.TempDir(), "x"), tr, "v1")
				mustWrite(b, ref, src.image(b), Options{})
				img := mustOpen(b, ref, Options{})
				layers, err := img.Layers()
				if err != nil {
					b.Fatal(err)
				}
				for _, l := range layers {
					rc, err := l.Compressed()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, rc); err != nil {
						b.Fatal(err)
					}
					rc.Close()
				}
			}
		})
	}
}
