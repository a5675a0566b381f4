package imgref

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
)

// refFor names a fresh store of the given transport under dir.
func refFor(dir, transport, tag string) string {
	switch transport {
	case OCI:
		return "oci:" + filepath.Join(dir, "layout") + ":" + tag
	case OCIArchive:
		return "oci-archive:" + filepath.Join(dir, "img.oci.tar") + ":" + tag
	case DockerArchive:
		return "docker-archive:" + filepath.Join(dir, "img.docker.tar") + ":example.com/app:" + tag
	default:
		return "dir:" + filepath.Join(dir, "dirimg")
	}
}

// TestRoundTrip writes a fixture to every local transport, then copies it
// from each to each other one, and checks the manifest, config and every
// blob survive byte for byte.
func TestRoundTrip(t *testing.T) {
	local := []string{OCI, OCIArchive, DockerArchive, Dir}
	for _, mt := range []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2} {
		want := fixture(t, mt, "linux/amd64", "rt", "gzip", "tar", "zstd", "gzip")
		for _, from := range local {
			for _, to := range local {
				if mt == types.OCIManifestSchema1 && (from == DockerArchive || to == DockerArchive) {
					continue // needs conversion, tested separately
				}
				t.Run(string(mt[len(mt)-20:])+"/"+from+"->"+to, func(t *testing.T) {
					dir := t.TempDir()
					src := refFor(filepath.Join(dir, "a"), from, "v1")
					mustWrite(t, src, want.image(t), Options{})
					a := mustOpen(t, src, Options{})
					assertSame(t, a, want)
					if a.Platform != "linux/amd64" {
						t.Errorf("platform %q", a.Platform)
					}
					dst := refFor(filepath.Join(dir, "b"), to, "v2")
					mustWrite(t, dst, a, Options{})
					assertSame(t, mustOpen(t, dst, Options{}), want)
				})
			}
		}
	}
}

func TestArchivesAreDeterministic(t *testing.T) {
	img := fixture(t, types.DockerManifestSchema2, "linux/amd64", "det", "gzip", "tar").image(t)
	for _, tr := range []string{OCIArchive, DockerArchive} {
		var outs [][]byte
		for i := 0; i < 2; i++ {
			dir := t.TempDir()
			ref := refFor(dir, tr, "v1")
			mustWrite(t, ref, img, Options{})
			b, err := os.ReadFile(mustParse(t, ref).Path)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, b)
			tr := tar.NewReader(bytes.NewReader(b))
			var names []string
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
					t.Fatalf("%s: non-canonical header %+v", h.Name, h)
				}
				if want := map[byte]int64{tar.TypeReg: 0o644, tar.TypeDir: 0o755}[h.Typeflag]; h.Mode != want {
					t.Fatalf("%s: mode %o", h.Name, h.Mode)
				}
				names = append(names, h.Name)
			}
			for j := 1; j < len(names); j++ {
				if names[j-1] >= names[j] {
					t.Fatalf("names not sorted: %q", names)
				}
			}
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Fatalf("%s: two writes differ", tr)
		}
	}
}

func TestDockerArchiveNeedsConvert(t *testing.T) {
	want := fixture(t, types.OCIManifestSchema1, "linux/amd64", "conv", "gzip", "tar")
	dir := t.TempDir()
	ref := refFor(dir, DockerArchive, "v1")
	err := Write(context.Background(), mustParse(t, ref), want.image(t), Options{})
	if fault.KindOf(err, 0) != fault.Usage || !strings.Contains(fault.HintOf(err), "--allow-convert") {
		t.Fatalf("want a usage error hinting --allow-convert, got %v (hint %q)", err, fault.HintOf(err))
	}
	if _, err := os.Stat(mustParse(t, ref).Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused write left a file: %v", err)
	}

	var logBuf bytes.Buffer
	o := Options{AllowConvert: true, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))}
	mustWrite(t, ref, want.image(t), o)
	if !strings.Contains(logBuf.String(), "digests change") {
		t.Fatalf("no warning about digests: %q", logBuf.String())
	}
	got := mustOpen(t, ref, Options{})
	mt, _ := got.MediaType()
	if mt != types.DockerManifestSchema2 {
		t.Fatalf("media type %s", mt)
	}
	m, _ := got.Manifest()
	for i, l := range m.Layers {
		if l.Digest != want.m.Layers[i].Digest {
			t.Fatalf("layer %d digest changed", i)
		}
	}
	if m.Layers[0].MediaType != dockerLayerGzip || m.Layers[1].MediaType != dockerLayerTar {
		t.Fatalf("layer types %s, %s", m.Layers[0].MediaType, m.Layers[1].MediaType)
	}
}

// A manifest that lies about a layer's compression cannot survive a
// docker-archive, whose manifest is rebuilt by sniffing.
func TestDockerArchiveSniffMismatch(t *testing.T) {
	img := fixture(t, types.DockerManifestSchema2, "linux/amd64", "sniff", "tar")
	img.m.Layers[0].MediaType = types.DockerLayer
	img.raw, _ = json.Marshal(img.m)
	ref := refFor(t.TempDir(), DockerArchive, "v1")
	err := Write(context.Background(), mustParse(t, ref), img.image(t), Options{})
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("want integrity error, got %v", err)
	}
}

// writeIndexLayout builds oci:dir holding an index of two platform images.
func writeIndexLayout(t *testing.T, dir string) (amd, arm *memImage, idxDigest v1.Hash) {
	amd = fixture(t, types.OCIManifestSchema1, "linux/amd64", "amd", "gzip")
	arm = fixture(t, types.OCIManifestSchema1, "linux/arm64/v8", "arm", "gzip")
	mustWrite(t, "oci:"+dir+":amd", amd.image(t), Options{})
	mustWrite(t, "oci:"+dir+":arm", arm.image(t), Options{})
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
		{MediaType: types.OCIManifestSchema1, Digest: sha256Hash(amd.raw), Size: int64(len(amd.raw)), Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
		{MediaType: types.OCIManifestSchema1, Digest: sha256Hash(arm.raw), Size: int64(len(arm.raw)), Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
	}}
	raw, _ := json.Marshal(idx)
	idxDigest = sha256Hash(raw)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", idxDigest.Hex), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	top := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{
		{MediaType: types.OCIImageIndex, Digest: idxDigest, Size: int64(len(raw)), Annotations: map[string]string{layout.RefNameAnnotation: "multi"}},
	}}
	tb, _ := json.Marshal(top)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), tb, 0o644); err != nil {
		t.Fatal(err)
	}
	return amd, arm, idxDigest
}

func TestIndexPlatform(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "multi")
	amd, arm, idxDigest := writeIndexLayout(t, dir)
	for _, tc := range []struct {
		platform string
		want     *memImage
		wantPlat string
	}{
		{"linux/amd64", amd, "linux/amd64"},
		{"linux/arm64", arm, "linux/arm64/v8"},
		{"linux/arm64/v8", arm, "linux/arm64/v8"},
	} {
		img := mustOpen(t, "oci:"+dir+":multi", Options{Platform: tc.platform})
		assertSame(t, img, tc.want)
		if string(img.IndexDigest) != idxDigest.String() || img.Platform != tc.wantPlat {
			t.Fatalf("%s: index %s platform %s", tc.platform, img.IndexDigest, img.Platform)
		}
	}
	// Copying the chosen image to dir: and back keeps its digest.
	out := "dir:" + filepath.Join(t.TempDir(), "armdir")
	mustWrite(t, out, mustOpen(t, "oci:"+dir+":multi", Options{Platform: "linux/arm64"}), Options{})
	assertSame(t, mustOpen(t, out, Options{}), arm)

	_, err := Open(context.Background(), mustParse(t, "oci:"+dir+":multi"), Options{Platform: "linux/s390x"})
	if fault.KindOf(err, 0) != fault.Usage || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Fatalf("want usage error listing platforms, got %v", err)
	}
	_, err = Open(context.Background(), mustParse(t, "oci:"+dir+":multi"), Options{Platform: "linux"})
	if fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("bad platform: %v", err)
	}
}

func TestOCITags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "l")
	a := fixture(t, types.OCIManifestSchema1, "linux/amd64", "a", "gzip")
	b := fixture(t, types.DockerManifestSchema2, "linux/amd64", "b", "gzip")
	mustWrite(t, "oci:"+dir+":one", a.image(t), Options{})
	assertSame(t, mustOpen(t, "oci:"+dir, Options{}), a) // the only image
	mustWrite(t, "oci:"+dir+":two", b.image(t), Options{})
	_, err := Open(context.Background(), mustParse(t, "oci:"+dir), Options{})
	if fault.KindOf(err, 0) != fault.Usage || !strings.Contains(err.Error(), "one, two") {
		t.Fatalf("want usage error listing tags, got %v", err)
	}
	_, err = Open(context.Background(), mustParse(t, "oci:"+dir+":three"), Options{})
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "one, two") {
		t.Fatalf("want env error listing tags, got %v", err)
	}
	// Re-tagging replaces the entry rather than adding one.
	mustWrite(t, "oci:"+dir+":one", b.image(t), Options{})
	assertSame(t, mustOpen(t, "oci:"+dir+":one", Options{}), b)
	raw, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	idx, _ := v1.ParseIndexManifest(bytes.NewReader(raw))
	if len(idx.Manifests) != 2 {
		t.Fatalf("index has %d entries", len(idx.Manifests))
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestCorruptBlobIsIntegrity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "l")
	want := fixture(t, types.OCIManifestSchema1, "linux/amd64", "c", "gzip")
	mustWrite(t, "oci:"+dir+":v", want.image(t), Options{})
	lp := filepath.Join(dir, "blobs", "sha256", want.m.Layers[0].Digest.Hex)
	b, _ := os.ReadFile(lp)
	b[len(b)-1] ^= 0xff
	os.WriteFile(lp, b, 0o644)

	img := mustOpen(t, "oci:"+dir+":v", Options{})
	ls, _ := img.Layers()
	rc, _ := ls[0].Compressed()
	_, err := io.ReadAll(rc)
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("want integrity error, got %v", err)
	}
	// A write from the corrupt source fails and leaves nothing behind.
	for _, tr := range []string{OCI, OCIArchive, Dir} {
		out := t.TempDir()
		err := Write(context.Background(), mustParse(t, refFor(out, tr, "v")), img, Options{})
		if fault.KindOf(err, 0) != fault.Integrity {
			t.Fatalf("%s: want integrity error, got %v", tr, err)
		}
		if ents, _ := os.ReadDir(out); len(ents) != 0 {
			t.Fatalf("%s: failed write left %v", tr, ents)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"oci:" + dir + "/nope", "oci-archive:" + dir + "/nope.tar", "docker-archive:" + dir + "/nope.tar", "dir:" + dir + "/nope"} {
		_, err := Open(context.Background(), mustParse(t, s), Options{})
		if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "nope") {
			t.Errorf("%s: want env error naming the path, got %v", s, err)
		}
	}
	hostile := []struct {
		name string
		hdr  tar.Header
	}{
		{"dotdot", tar.Header{Name: "../evil", Typeflag: tar.TypeReg}},
		{"abs", tar.Header{Name: "/etc/evil", Typeflag: tar.TypeReg}},
		{"symlink", tar.Header{Name: "index.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}},
		{"hardlink", tar.Header{Name: "index.json", Typeflag: tar.TypeLink, Linkname: "x"}},
		{"device", tar.Header{Name: "dev", Typeflag: tar.TypeChar}},
	}
	for _, h := range hostile {
		p := filepath.Join(dir, h.name+".tar")
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hdr := h.hdr
		hdr.Mode = 0o644
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		tw.Close()
		os.WriteFile(p, buf.Bytes(), 0o644)
		_, err := Open(context.Background(), mustParse(t, "oci-archive:"+p), Options{})
		if fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("%s: want integrity error, got %v", h.name, err)
		}
	}
	// A truncated archive is an integrity error too.
	ok := filepath.Join(dir, "ok.tar")
	mustWrite(t, "oci-archive:"+ok, fixture(t, types.OCIManifestSchema1, "linux/amd64", "t", "gzip").image(t), Options{})
	b, _ := os.ReadFile(ok)
	os.WriteFile(ok, b[:len(b)/2], 0o644)
	if _, err := Open(context.Background(), mustParse(t, "oci-archive:"+ok), Options{}); fault.KindOf(err, 0) != fault.Integrity {
		t.Errorf("truncated: want integrity error, got %v", err)
	}
}

// TestLegacyDockerArchive reads the classic docker save layout: config as
// <hex>.json, layers as <id>/layer.tar, a repeated layer as a symlink.
func TestLegacyDockerArchive(t *testing.T) {
	l1 := layerTar(t, "a", []byte("first"))
	l2 := compress(t, "gzip", layerTar(t, "b", []byte("second")))
	cfg := []byte(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cfgName := sha256Hash(cfg).Hex + ".json"
	mj, _ := json.Marshal([]archiveEntry{{Config: cfgName, RepoTags: []string{"app:old"}, Layers: []string{"aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"}}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.WriteHeader(&tar.Header{Name: "aaa/", Mode: 0o755, Typeflag: tar.TypeDir})
	add("aaa/layer.tar", l1)
	add("bbb/layer.tar", l2)
	tw.WriteHeader(&tar.Header{Name: "ccc/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../aaa/layer.tar"})
	add(cfgName, cfg)
	add("manifest.json", mj)
	tw.Close()
	p := filepath.Join(t.TempDir(), "legacy.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)

	img := mustOpen(t, "docker-archive:"+p+":app:old", Options{})
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	wantLayers := []v1.Descriptor{
		{MediaType: dockerLayerTar, Size: int64(len(l1)), Digest: sha256Hash(l1)},
		{MediaType: dockerLayerGzip, Size: int64(len(l2)), Digest: sha256Hash(l2)},
		{MediaType: dockerLayerTar, Size: int64(len(l1)), Digest: sha256Hash(l1)},
	}
	for i, l := range m.Layers {
		if l.MediaType != wantLayers[i].MediaType || l.Digest != wantLayers[i].Digest || l.Size != wantLayers[i].Size {
			t.Fatalf("layer %d: %+v, want %+v", i, l, wantLayers[i])
		}
	}
	if m.Config.Digest != sha256Hash(cfg) || m.Config.MediaType != dockerConfigType || img.Platform != "linux/arm64" {
		t.Fatalf("config %+v platform %s", m.Config, img.Platform)
	}
	// Open → Write → Open keeps the synthesized manifest digest.
	d1, _ := img.Digest()
	out := filepath.Join(t.TempDir(), "new.tar")
	mustWrite(t, "docker-archive:"+out+":app:new", img, Options{})
	d2, _ := mustOpen(t, "docker-archive:"+out, Options{}).Digest()
	if d1 != d2 {
		t.Fatalf("digest %s became %s", d1, d2)
	}
	_, err = Open(context.Background(), mustParse(t, "docker-archive:"+p+":app:missing"), Options{})
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "app:old") {
		t.Fatalf("want env error listing tags, got %v", err)
	}
}

// FuzzOpenArchive feeds arbitrary bytes to the archive readers (tar index,
// manifest.json, index.json, synthesized manifests): they must not panic,
// must tag their errors, and what opens must read back verified.
func FuzzOpenArchive(f *testing.F) {
	for _, tr := range []string{OCIArchive, DockerArchive} {
		ref := refFor(f.TempDir(), tr, "v1")
		mustWrite(f, ref, fixture(f, types.DockerManifestSchema2, "linux/amd64", "fz", "gzip", "tar").image(f), Options{})
		b, err := os.ReadFile(mustParse(f, ref).Path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "in.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tr := range []string{OCIArchive, DockerArchive} {
			img, err := Open(context.Background(), Ref{Transport: tr, Path: p}, Options{Platform: "linux/amd64"})
			if err != nil {
				if fault.KindOf(err, 0) == 0 {
					t.Fatalf("%s: untagged error: %v", tr, err)
				}
				continue
			}
			if layers, err := img.Layers(); err == nil {
				for _, l := range layers {
					if rc, err := l.Compressed(); err == nil {
						io.Copy(io.Discard, rc)
						rc.Close()
					}
				}
			}
			img.Close()
		}
	})
}

func TestWriteReplacesOnlyItsOwn(t *testing.T) {
	a := fixture(t, types.DockerManifestSchema2, "linux/amd64", "a", "gzip")
	b := fixture(t, types.DockerManifestSchema2, "linux/amd64", "b", "tar")
	dir := t.TempDir()
	// A dir: image is replaced whole.
	d := "dir:" + filepath.Join(dir, "d")
	mustWrite(t, d, a.image(t), Options{})
	mustWrite(t, d, b.image(t), Options{})
	assertSame(t, mustOpen(t, d, Options{}), b)
	if ents, _ := os.ReadDir(filepath.Join(dir, "d")); len(ents) != 4 { // version, manifest.json, config, layer
		t.Fatalf("stale files after replace: %v", ents)
	}
	// An archive file is replaced whole.
	da := "docker-archive:" + filepath.Join(dir, "x.tar")
	mustWrite(t, da, a.image(t), Options{})
	mustWrite(t, da, b.image(t), Options{})
	assertSame(t, mustOpen(t, da, Options{}), b)
	// Directories that are not images of the transport are left alone.
	foreign := filepath.Join(dir, "foreign")
	os.MkdirAll(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "precious"), []byte("keep"), 0o644)
	for _, s := range []string{"oci:" + foreign, "dir:" + foreign} {
		err := Write(context.Background(), mustParse(t, s), a.image(t), Options{})
		if fault.KindOf(err, 0) != fault.Usage {
			t.Fatalf("%s: want usage error, got %v", s, err)
		}
	}
	if ents, _ := os.ReadDir(foreign); len(ents) != 1 {
		t.Fatalf("foreign dir touched: %v", ents)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Fatalf("temporary leftovers: %v", ents)
	}
}
