package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/sidecar"
)

// archive builds a minimal valid archive: one image without layers whose
// manifest and config ship (unpack checks the sidecar against them).
func archive(t testing.TB) []byte {
	cfg := []byte(`{"config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := digest.FromBytes(cfg)
	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		cd.String() + `","size":` + fmt.Sprint(len(cfg)) + `},"layers":[]}`)
	md := digest.FromBytes(man)
	sc := sidecar.New("test")
	mdesc := sidecar.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: md, Size: int64(len(man))}
	sc.Images = []sidecar.Image{{Name: "img", Target: sidecar.Target{Ref: "oci:x", Manifest: mdesc}, Blobs: []sidecar.Blob{
		{Descriptor: mdesc, Role: sidecar.RoleManifest, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}, Entry: sidecar.BlobEntryName(md)},
		{Descriptor: sidecar.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cd, Size: int64(len(cfg))}, Role: sidecar.RoleConfig, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}, Entry: sidecar.BlobEntryName(cd)},
	}}}
	sc.Entries = []sidecar.Entry{{Name: sidecar.BlobEntryName(md), Size: int64(len(man)), Digest: md}, {Name: sidecar.BlobEntryName(cd), Size: int64(len(cfg)), Digest: cd}}
	scb, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range []struct {
		n string
		d []byte
	}{{sidecar.EntryName, scb}, {sidecar.BlobEntryName(md), man}, {sidecar.BlobEntryName(cd), cfg}} {
		tw.WriteHeader(&tar.Header{Name: e.n, Size: int64(len(e.d)), Mode: 0o644, Typeflag: tar.TypeReg})
		tw.Write(e.d)
	}
	tw.Close()
	return b.Bytes()
}

func TestReadValid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	res, err := Read(context.Background(), bytes.NewReader(archive(t)), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signed || len(res.Sidecar.Images) != 1 {
		t.Fatalf("%+v", res)
	}
	for _, p := range []string{"index.json", "oci-layout", "diffah/sidecar.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Read(context.Background(), bytes.NewReader(archive(t)), dir, Options{}); fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("second unpack into the same dir: %v", err)
	}
	if _, err := Read(context.Background(), bytes.NewReader(archive(t)), dir, Options{Replace: true}); err != nil {
		t.Fatalf("replace: %v", err)
	}
}

func TestTrailingData(t *testing.T) {
	a := archive(t)
	for name, tail := range map[string][]byte{"junk": []byte("junk"), "too much padding": make([]byte, maxTrailer+1024)} {
		dir := filepath.Join(t.TempDir(), "out")
		_, err := Read(context.Background(), bytes.NewReader(append(append([]byte{}, a...), tail...)), dir, Options{})
		if fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("%s: %v", name, err)
		}
		if _, serr := os.Stat(dir); serr == nil {
			t.Errorf("%s: left %s", name, dir)
		}
	}
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := Read(context.Background(), bytes.NewReader(append(append([]byte{}, a...), make([]byte, 9216)...)), dir, Options{}); err != nil {
		t.Fatalf("record padding refused: %v", err)
	}
}

// FuzzRead feeds arbitrary bytes to the archive reader: it must fail
// cleanly (an integrity error, nothing left behind) or produce a layout.
func FuzzRead(f *testing.F) {
	a := archive(f)
	f.Add(a)
	f.Add(a[:600])
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), "out")
		_, err := Read(context.Background(), bytes.NewReader(data), dir, Options{})
		if err != nil {
			if k := fault.KindOf(err, 0); k != fault.Integrity && k != fault.Env {
				t.Fatalf("kind %v: %v", k, err)
			}
			if _, serr := os.Stat(dir); serr == nil {
				t.Fatal("failed read left the output")
			}
			ents, _ := os.ReadDir(filepath.Dir(dir))
			if len(ents) != 0 {
				t.Fatalf("failed read left %s", ents[0].Name())
			}
		}
	})
}

// TestZstdBomb: a whole-archive zstd stream that declares a window larger
// than unpack allows is refused (decompression bomb), and so is a
// declared tar entry that streams more than its size.
func TestZstdBomb(t *testing.T) {
	var z bytes.Buffer
	enc, err := zstd.NewWriter(&z, zstd.WithWindowSize(512<<20), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(archive(t))
	enc.Write(make([]byte, 300<<20)) // a long run of zeros: compresses to little
	enc.Close()
	dir := filepath.Join(t.TempDir(), "out")
	_, err = Read(context.Background(), bytes.NewReader(z.Bytes()), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "window") {
		t.Fatalf("512 MiB-window zstd stream: %v", err)
	}
	if _, serr := os.Stat(dir); serr == nil {
		t.Fatal("left output")
	}
}
