package imgref

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// memImage is a fixture image held in memory with full control over its
// bytes and media types.
type memImage struct {
	raw   []byte
	mt    types.MediaType
	m     *v1.Manifest
	blobs map[v1.Hash][]byte
}

func (m *memImage) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m *memImage) MediaType() (types.MediaType, error) { return m.mt, nil }
func (m *memImage) RawConfigFile() ([]byte, error)      { return m.blobs[m.m.Config.Digest], nil }
func (m *memImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, d := range append([]v1.Descriptor{m.m.Config}, m.m.Layers...) {
		if d.Digest == h {
			return memBlob{d: d, b: m.blobs[h]}, nil
		}
	}
	return nil, fmt.Errorf("no blob %s", h)
}

type memBlob struct {
	d v1.Descriptor
	b []byte
}

func (b memBlob) Digest() (v1.Hash, error)            { return b.d.Digest, nil }
func (b memBlob) Size() (int64, error)                { return b.d.Size, nil }
func (b memBlob) MediaType() (types.MediaType, error) { return b.d.MediaType, nil }
func (b memBlob) Compressed() (io.ReadCloser, error)  { return io.NopCloser(bytes.NewReader(b.b)), nil }

// layerTar makes a small deterministic tar with one file.
func layerTar(t testing.TB, name string, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(content)
	tw.Close()
	return buf.Bytes()
}

func compress(t testing.TB, kind string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch kind {
	case "tar":
		return b
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(b)
		zw.Close()
	default:
		t.Fatalf("unknown kind %s", kind)
	}
	return buf.Bytes()
}

var layerTypes = map[types.MediaType]map[string]types.MediaType{
	types.OCIManifestSchema1:    {"tar": types.OCIUncompressedLayer, "gzip": types.OCILayer, "zstd": types.OCILayerZStd},
	types.DockerManifestSchema2: {"tar": types.DockerUncompressedLayer, "gzip": types.DockerLayer, "zstd": dockerLayerZstd},
}

// fixture builds an image of manifest type mt whose layers are compressed
// as kinds; seed varies the content, platform goes into the config.
func fixture(t testing.TB, mt types.MediaType, platform string, seed string, kinds ...string) *memImage {
	t.Helper()
	img := &memImage{mt: mt, blobs: map[v1.Hash][]byte{}}
	m := &v1.Manifest{SchemaVersion: 2, MediaType: mt}
	var diffIDs []string
	for i, k := range kinds {
		raw := layerTar(t, fmt.Sprintf("f%d", i), bytes.Repeat([]byte(fmt.Sprintf("%s layer %d ", seed, i)), 50+i))
		diffIDs = append(diffIDs, sha256Hash(raw).String())
		blob := compress(t, k, raw)
		h := sha256Hash(blob)
		img.blobs[h] = blob
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: layerTypes[mt][k], Size: int64(len(blob)), Digest: h})
	}
	p, err := parsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": p.Architecture, "os": p.OS, "variant": p.Variant,
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
		"config": map[string]any{"Env": []string{"SEED=" + seed}},
	})
	h := sha256Hash(cfg)
	img.blobs[h] = cfg
	cmt := types.OCIConfigJSON
	if mt == types.DockerManifestSchema2 {
		cmt = types.DockerConfigJSON
	}
	m.Config = v1.Descriptor{MediaType: cmt, Size: int64(len(cfg)), Digest: h}
	img.m = m
	img.raw, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (m *memImage) image(t testing.TB) v1.Image {
	t.Helper()
	img, err := partial.CompressedToImage(m)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// assertSame checks img has want's manifest bytes and that every blob reads
// back (verified) with want's bytes.
func assertSame(t *testing.T, img v1.Image, want *memImage) {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, want.raw) {
		t.Fatalf("manifest differs:\n got %s\nwant %s", raw, want.raw)
	}
	d, err := img.Digest()
	if err != nil || d != sha256Hash(want.raw) {
		t.Fatalf("digest %v, %v; want %s", d, err, sha256Hash(want.raw))
	}
	cfg, err := img.RawConfigFile()
	if err != nil || !bytes.Equal(cfg, want.blobs[want.m.Config.Digest]) {
		t.Fatalf("config differs (%v)", err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(want.m.Layers) {
		t.Fatalf("%d layers, want %d", len(layers), len(want.m.Layers))
	}
	for i, l := range layers {
		ld, _ := l.Digest()
		if ld != want.m.Layers[i].Digest {
			t.Fatalf("layer %d digest %s, want %s", i, ld, want.m.Layers[i].Digest)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if !bytes.Equal(b, want.blobs[ld]) {
			t.Fatalf("layer %d bytes differ", i)
		}
	}
}

func mustParse(t testing.TB, s string) Ref {
	t.Helper()
	r, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return r
}

func mustOpen(t testing.TB, s string, o Options) *Image {
	t.Helper()
	img, err := Open(context.Background(), mustParse(t, s), o)
	if err != nil {
		t.Fatalf("Open(%s): %v", s, err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func mustWrite(t testing.TB, s string, img v1.Image, o Options) {
	t.Helper()
	if err := Write(context.Background(), mustParse(t, s), img, o); err != nil {
		t.Fatalf("Write(%s): %v", s, err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
