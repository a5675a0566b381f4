package imgref

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// skopeo runs the installed skopeo, skipping the test when it is absent.
func skopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed")
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// TestSkopeoReadsOutputs checks what Write produces with a tool nobody
// here wrote: skopeo must see the same manifest bytes (or, for
// docker-archive, the same layers and config). containers/image skips
// index.json entries with Docker media types, so skopeo is shown Docker
// manifests only through dir: and docker-archive:.
func TestSkopeoReadsOutputs(t *testing.T) {
	for _, mt := range []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2} {
		want := fixture(t, mt, "linux/amd64", "skopeo", "gzip", "tar")
		dir := t.TempDir()
		refs := []string{"dir:" + filepath.Join(dir, "d")}
		if mt == types.OCIManifestSchema1 {
			refs = append(refs, "oci:"+filepath.Join(dir, "layout")+":v1", "oci-archive:"+filepath.Join(dir, "a.tar")+":v1")
		}
		for _, s := range refs {
			mustWrite(t, s, want.image(t), Options{})
			raw := skopeo(t, "inspect", "--raw", s)
			if !bytes.Equal(raw, want.raw) {
				t.Errorf("%s: skopeo sees manifest\n%s\nwant\n%s", s, raw, want.raw)
			}
			skopeo(t, "inspect", s) // parses the config too
		}
		if mt != types.DockerManifestSchema2 {
			continue
		}
		s := "docker-archive:" + filepath.Join(dir, "d.tar") + ":example.com/app:v1"
		mustWrite(t, s, want.image(t), Options{})
		var info struct {
			Digest string
			Layers []string
		}
		if err := json.Unmarshal(skopeo(t, "inspect", s), &info); err != nil {
			t.Fatal(err)
		}
		if len(info.Layers) != len(want.m.Layers) {
			t.Fatalf("skopeo sees %d layers", len(info.Layers))
		}
		// containers/image models docker-archive layers as uncompressed
		// and reports their diff IDs.
		diffIDs := want.diffIDs(t)
		for i, l := range info.Layers {
			if l != diffIDs[i].String() {
				t.Errorf("layer %d: skopeo sees %s, want %s", i, l, diffIDs[i])
			}
		}
	}
}

// TestReadsSkopeoOutputs reads what skopeo writes: dir:, oci: and
// oci-archive: keep the manifest; skopeo's docker-archive (config and
// layers named <hex>.json and <hex>.tar) gives the same layer digests.
func TestReadsSkopeoOutputs(t *testing.T) {
	oci := fixture(t, types.OCIManifestSchema1, "linux/amd64", "fromskopeo", "gzip", "tar")
	dir := t.TempDir()
	src := "oci:" + filepath.Join(dir, "src") + ":v1"
	mustWrite(t, src, oci.image(t), Options{})
	for _, dst := range []string{
		"dir:" + filepath.Join(dir, "d"),
		"oci:" + filepath.Join(dir, "o") + ":v1",
		"oci-archive:" + filepath.Join(dir, "o.tar") + ":v1",
	} {
		skopeo(t, "--insecure-policy", "copy", "-q", "--preserve-digests", src, dst)
		assertSame(t, mustOpen(t, dst, Options{}), oci)
	}

	want := fixture(t, types.DockerManifestSchema2, "linux/amd64", "fromskopeo", "gzip", "tar")
	src = "dir:" + filepath.Join(dir, "dsrc")
	mustWrite(t, src, want.image(t), Options{})
	da := "docker-archive:" + filepath.Join(dir, "s.tar") + ":example.com/app:v1"
	skopeo(t, "--insecure-policy", "copy", "-q", src, da)
	img := mustOpen(t, da, Options{})
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	// skopeo stores docker-archive layers uncompressed.
	diffIDs := want.diffIDs(t)
	for i, l := range m.Layers {
		if l.Digest != diffIDs[i] || l.MediaType != dockerLayerTar {
			t.Errorf("layer %d: %s %s, want %s uncompressed", i, l.MediaType, l.Digest, diffIDs[i])
		}
	}
	layers, _ := img.Layers()
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Errorf("layer %d: %v", i, err)
		}
		rc.Close()
	}
	if cfg, _ := img.RawConfigFile(); !bytes.Equal(cfg, want.blobs[want.m.Config.Digest]) {
		t.Errorf("config differs")
	}
}

func (m *memImage) diffIDs(t *testing.T) []v1.Hash {
	t.Helper()
	cf, err := v1.ParseConfigFile(bytes.NewReader(m.blobs[m.m.Config.Digest]))
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}

// TestReadsSkopeoIndexDir reads a multi-platform dir: written by skopeo
// (index in manifest.json, instances in <hex>.manifest.json).
func TestReadsSkopeoIndexDir(t *testing.T) {
	dir := t.TempDir()
	layout := filepath.Join(dir, "multi")
	amd, arm, idxDigest := writeIndexLayout(t, layout)
	out := "dir:" + filepath.Join(dir, "d")
	skopeo(t, "--insecure-policy", "copy", "-q", "--all", "--preserve-digests", "oci:"+layout+":multi", out)
	for _, tc := range []struct {
		platform string
		want     *memImage
	}{{"linux/amd64", amd}, {"linux/arm64/v8", arm}} {
		img := mustOpen(t, out, Options{Platform: tc.platform})
		assertSame(t, img, tc.want)
		if string(img.IndexDigest) != idxDigest.String() {
			t.Fatalf("index digest %s, want %s", img.IndexDigest, idxDigest)
		}
	}
}
