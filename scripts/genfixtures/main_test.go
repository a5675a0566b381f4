package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layouts are the fixture directories the README promises.
var layouts = []string{
	"v1", "v2", "docker-v1", "docker-v2", "zstd-v1", "zstd-v2", "multi-v1", "multi-v2", "unrelated",
	"bundle/svc-a-v1", "bundle/svc-a-v2", "bundle/svc-b-v1", "bundle/svc-b-v2", "bundle/svc-c-v1", "bundle/svc-c-v2",
}

// gen is one generation shared by the tests: generating is deterministic,
// so there is no need to pay for it in every test.
var gen string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "genfixtures-test-")
	if err != nil {
		panic(err)
	}
	gen = filepath.Join(dir, "images")
	if err := generate(gen); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// readTree returns every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestDeterministic(t *testing.T) {
	again := filepath.Join(t.TempDir(), "images")
	if err := generate(again); err != nil {
		t.Fatal(err)
	}
	a, b := readTree(t, gen), readTree(t, again)
	if len(a) != len(b) {
		t.Fatalf("runs wrote %d and %d files", len(a), len(b))
	}
	var total int
	for p, x := range a {
		if !bytes.Equal(x, b[p]) {
			t.Errorf("%s differs between two runs", p)
		}
		total += len(x)
	}
	if total > 2<<20 {
		t.Errorf("fixtures total %d bytes, want under 2 MiB", total)
	}
}

// TestCommitted is `-check` as a test: the committed fixtures are what
// this program writes.
func TestCommitted(t *testing.T) {
	committed := filepath.Join("..", "..", "testdata", "images")
	if _, err := os.Stat(filepath.Join(committed, "SHA256SUMS")); err != nil {
		t.Skip("no committed fixtures:", err)
	}
	if err := run([]string{"-check", "-o", committed}, io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDrift(t *testing.T) {
	dir := t.TempDir()
	sums, err := os.ReadFile(filepath.Join(gen, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sums string // "" means no SHA256SUMS
		want string
	}{
		{name: "same", sums: string(sums)},
		{name: "missing", want: "make fixtures"},
		{name: "changed line", sums: zeroSum(string(sums), "v1/oci-layout"), want: "1 files differ, first v1/oci-layout"},
		{name: "extra file", sums: string(sums) + strings.Repeat("0", 64) + "  gone\n", want: "first gone"},
		{name: "dropped file", sums: strings.SplitN(string(sums), "\n", 2)[1], want: "1 files differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "SHA256SUMS"))
			if tt.sums != "" {
				if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(tt.sums), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := run([]string{"-check", "-o", dir}, io.Discard)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// zeroSum replaces the checksum of path in a SHA256SUMS text with zeros.
func zeroSum(sums, path string) string {
	lines := strings.Split(sums, "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, "  "+path) {
			lines[i] = strings.Repeat("0", 64) + "  " + path
		}
	}
	return strings.Join(lines, "\n")
}

func TestWriteReplacesOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "images")
	if err := os.MkdirAll(filepath.Join(out, "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-o", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "stale")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale directory survived: %v", err)
	}
	if err := run([]string{"-check", "-o", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-bogus"}, io.Discard); err == nil {
		t.Error("an unknown flag was accepted")
	}
}

// open returns the entry tagged latest of the layout at dir.
func open(t *testing.T, dir string) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(filepath.Join(gen, dir))
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations[refName] != "latest" {
		t.Fatalf("%s: want one entry tagged latest, got %+v", dir, m.Manifests)
	}
	return idx, m.Manifests[0]
}

func openImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx, d := open(t, dir)
	img, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return img
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ds []v1.Hash
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

// TestLayoutsValid opens every layout with ggcr and validates digests,
// sizes and diffIDs of every blob, and checks the media types.
func TestLayoutsValid(t *testing.T) {
	for _, dir := range layouts {
		t.Run(dir, func(t *testing.T) {
			idx, d := open(t, dir)
			wantLayer := types.OCILayer
			switch {
			case strings.HasPrefix(dir, "docker-"):
				wantLayer = types.DockerLayer
			case strings.HasPrefix(dir, "zstd-"):
				wantLayer = types.OCILayerZStd
			}
			var imgs []v1.Image
			if strings.HasPrefix(dir, "multi-") {
				if d.MediaType != types.OCIImageIndex {
					t.Fatalf("media type %s, want an OCI index", d.MediaType)
				}
				child, err := idx.ImageIndex(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				im, _ := child.IndexManifest()
				var plats []string
				for _, m := range im.Manifests {
					plats = append(plats, m.Platform.String())
					img, err := child.Image(m.Digest)
					if err != nil {
						t.Fatal(err)
					}
					imgs = append(imgs, img)
				}
				if got := strings.Join(plats, ","); got != "linux/amd64,linux/arm64" {
					t.Errorf("platforms %s", got)
				}
			} else {
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				imgs = append(imgs, img)
			}
			for _, img := range imgs {
				checkBlobs(t, img)
				m, err := img.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range m.Layers {
					if l.MediaType != wantLayer {
						t.Errorf("layer %s has media type %s, want %s", l.Digest, l.MediaType, wantLayer)
					}
				}
				if strings.HasPrefix(dir, "docker-") != (m.MediaType == types.DockerManifestSchema2) {
					t.Errorf("manifest media type %s", m.MediaType)
				}
			}
		})
	}
}

// checkBlobs hashes every blob of img: the config and each layer must match
// the manifest's digest and size, and each uncompressed layer its diffID.
func checkBlobs(t *testing.T, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if h, n, _ := v1.SHA256(bytes.NewReader(raw)); h != m.Config.Digest || n != m.Config.Size {
		t.Errorf("config is %s (%d bytes), manifest says %s (%d)", h, n, m.Config.Digest, m.Config.Size)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%d diffIDs for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	for i, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			open func() (io.ReadCloser, error)
			want v1.Hash
			size int64 // -1: not in the manifest
		}{{l.Compressed, d.Digest, d.Size}, {l.Uncompressed, cf.RootFS.DiffIDs[i], -1}} {
			rc, err := c.open()
			if err != nil {
				t.Fatal(err)
			}
			h, n, err := v1.SHA256(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("layer %s: %v", d.Digest, err)
			}
			if h != c.want || (c.size >= 0 && n != c.size) {
				t.Errorf("layer %d reads as %s (%d bytes), want %s (%d)", i, h, n, c.want, c.size)
			}
		}
	}
}

// TestRelations checks what the tests built on the fixtures rely on: which
// layers are shared and what changes.
func TestRelations(t *testing.T) {
	for _, pre := range []string{"", "docker-", "zstd-"} {
		a, b := layerDigests(t, openImage(t, pre+"v1")), layerDigests(t, openImage(t, pre+"v2"))
		if len(a) != 3 || len(b) != 3 {
			t.Fatalf("%sv1/v2: %d and %d layers, want 3", pre, len(a), len(b))
		}
		if a[0] != b[0] || a[1] == b[1] || a[2] == b[2] {
			t.Errorf("%sv1/v2: want the base shared and lib and app changed: %v %v", pre, a, b)
		}
	}
	v1l := layerDigests(t, openImage(t, "v1"))
	for _, l := range layerDigests(t, openImage(t, "unrelated")) {
		for _, x := range v1l {
			if l == x {
				t.Errorf("unrelated shares layer %s with v1", l)
			}
		}
	}
	for _, v := range []string{"v1", "v2"} {
		var apps []v1.Hash
		for _, svc := range []string{"svc-a", "svc-b", "svc-c"} {
			ds := layerDigests(t, openImage(t, "bundle/"+svc+"-"+v))
			if ds[0] != v1l[0] {
				t.Errorf("bundle %s-%s: base %s, want v1's %s", svc, v, ds[0], v1l[0])
			}
			apps = append(apps, ds[1])
		}
		if apps[0] == apps[1] || apps[1] == apps[2] || apps[0] == apps[2] {
			t.Errorf("bundle %s: services share an app layer", v)
		}
	}

	// v2's lib layer deletes old.txt with a whiteout; the app binary is the
	// advertised size.
	ls, err := openImage(t, "v2").Layers()
	if err != nil {
		t.Fatal(err)
	}
	if got := tarEntries(t, ls[1]); got["usr/lib/.wh.old.txt"] != 0 || got["usr/lib/new.txt"] == 0 {
		t.Errorf("v2 lib layer entries: %v", got)
	}
	if n := tarEntries(t, ls[2])["app/server"]; n < 190<<10 || n > 210<<10 {
		t.Errorf("v2 app/server is %d bytes, want about 200 KiB", n)
	}
}

// tarEntries maps each entry of a layer to its size (-1 for non-files).
func tarEntries(t *testing.T, l v1.Layer) map[string]int64 {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Size
		if h.Typeflag != tar.TypeReg {
			got[h.Name] = -1
		}
	}
}

// TestSkopeo checks that another implementation reads every layout: the
// raw manifest skopeo returns for oci:DIR:latest is the one ggcr wrote.
// skopeo (1.9, Debian 12) skips Docker-type manifests in an OCI layout, so
// the Docker pair is checked through a docker-archive written by ggcr.
func TestSkopeo(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (scripts/deps.sh installs it)")
	}
	inspect := func(t *testing.T, ref string) []byte {
		t.Helper()
		out, err := exec.Command("skopeo", "inspect", "--raw", ref).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("skopeo inspect --raw %s: %v: %s", ref, err, ee.Stderr)
			}
			t.Fatal(err)
		}
		return out
	}
	for _, dir := range layouts {
		t.Run(dir, func(t *testing.T) {
			if strings.HasPrefix(dir, "docker-") {
				img := openImage(t, dir)
				archive := filepath.Join(t.TempDir(), "img.tar")
				tag, err := name.NewTag("fixture/" + dir + ":latest")
				if err != nil {
					t.Fatal(err)
				}
				if err := tarball.WriteToFile(archive, tag, img); err != nil {
					t.Fatal(err)
				}
				var m v1.Manifest
				if err := json.Unmarshal(inspect(t, "docker-archive:"+archive), &m); err != nil {
					t.Fatal(err)
				}
				want, err := img.ConfigName()
				if err != nil {
					t.Fatal(err)
				}
				if m.Config.Digest != want || len(m.Layers) != 3 {
					t.Errorf("skopeo sees config %s and %d layers, want %s and 3", m.Config.Digest, len(m.Layers), want)
				}
				return
			}
			out := inspect(t, "oci:"+filepath.Join(gen, dir)+":latest")
			_, d := open(t, dir)
			want, err := os.ReadFile(filepath.Join(gen, dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(want)) {
				t.Errorf("skopeo returned a different manifest:\n%s\nwant\n%s", out, want)
			}
		})
	}
}
