// Command genfixtures writes the small, deterministic test images under
// testdata/images (OCI layouts) and their SHA256SUMS. Every byte derives
// from fixed seeds and a fixed mtime, so two runs give identical files;
// `-check` regenerates into a temporary directory and compares with the
// committed checksums, so a change to this program that moves a fixture
// cannot go unnoticed.
//
//	go run ./scripts/genfixtures [-o testdata/images] [-check]
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// mtime is every file's, config's and history entry's time: a real clock
// would make each run differ.
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// refName tags each layout's single entry so `oci:DIR:latest` resolves.
const refName = "org.opencontainers.image.ref.name"

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "genfixtures:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fl := flag.NewFlagSet("genfixtures", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("o", "testdata/images", "output directory (replaced)")
	check := fl.Bool("check", false, "regenerate into a temp dir and compare with OUT/SHA256SUMS instead of writing OUT")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *check {
		return checkDrift(*out)
	}
	if err := os.RemoveAll(*out); err != nil {
		return fmt.Errorf("clearing %s: %w", *out, err)
	}
	if err := generate(*out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "genfixtures: wrote %s\n", *out)
	return nil
}

// checkDrift regenerates into a temporary directory and names every file
// whose checksum differs from dir/SHA256SUMS.
func checkDrift(dir string) error {
	want, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return fmt.Errorf("%w (run `make fixtures` and commit testdata/images)", err)
	}
	tmp, err := os.MkdirTemp("", "genfixtures-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := generate(tmp); err != nil {
		return err
	}
	got, err := os.ReadFile(filepath.Join(tmp, "SHA256SUMS"))
	if err != nil {
		return err
	}
	if bytes.Equal(want, got) {
		return nil
	}
	diff := sumsDiff(string(want), string(got))
	return fmt.Errorf("fixtures drifted from %s/SHA256SUMS (%d files differ, first %s): run `make fixtures` and commit", dir, len(diff), diff[0])
}

// sumsDiff lists the paths whose lines differ between two SHA256SUMS texts.
func sumsDiff(a, b string) []string {
	parse := func(s string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			if sum, path, ok := strings.Cut(l, "  "); ok {
				m[path] = sum
			}
		}
		return m
	}
	ma, mb := parse(a), parse(b)
	var diff []string
	for p, s := range ma {
		if mb[p] != s {
			diff = append(diff, p)
		}
	}
	for p := range mb {
		if _, ok := ma[p]; !ok {
			diff = append(diff, p)
		}
	}
	sort.Strings(diff)
	if len(diff) == 0 { // same lines, different layout of the file
		diff = []string{"SHA256SUMS"}
	}
	return diff
}

// file is one tar entry.
type file struct {
	name string
	body []byte
	mode int64
	link string // symlink target
	dir  bool
}

// binary returns n bytes that look like machine code: instruction-like
// runs with some randomness, so it compresses about as well as a real
// executable and a delta tool sees the same kind of content.
func binary(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	ops := make([][]byte, 64)
	for i := range ops {
		ops[i] = make([]byte, 2+rng.Intn(6))
		rng.Read(ops[i])
	}
	var b bytes.Buffer
	for b.Len() < n {
		b.Write(ops[rng.Intn(len(ops))])
		if rng.Intn(5) == 0 {
			var x [4]byte
			rng.Read(x[:])
			b.Write(x[:])
		}
	}
	return b.Bytes()[:n]
}

// edit returns a copy of b with a few local changes, the shape of a
// rebuilt binary: overwritten, inserted and deleted runs that shift the
// rest of the file.
func edit(b []byte, seed int64, changes int) []byte {
	rng := rand.New(rand.NewSource(seed))
	out := append([]byte{}, b...)
	for i := 0; i < changes; i++ {
		at := rng.Intn(len(out) - 64)
		switch rng.Intn(3) {
		case 0:
			rng.Read(out[at : at+16])
		case 1:
			ins := make([]byte, 8+rng.Intn(32))
			rng.Read(ins)
			out = append(out[:at], append(ins, out[at:]...)...)
		case 2:
			out = append(out[:at], out[at+8+rng.Intn(32):]...)
		}
	}
	return out
}

func text(seed int64, lines int) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := strings.Fields("alpha beta gamma delta layer image digest manifest config blob tar gzip zstd patch baseline target registry site release")
	var b bytes.Buffer
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&b, "%04d", i)
		for j := 0; j < 8; j++ {
			b.WriteByte(' ')
			b.WriteString(words[rng.Intn(len(words))])
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// tarOf writes files as a tar in name order with fixed times and owners.
func tarOf(files []file) ([]byte, error) {
	files = append([]file{}, files...)
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, ModTime: mtime, Mode: 0o644, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.mode != 0 {
			h.Mode = f.mode
		}
		switch {
		case f.dir:
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		case f.link != "":
			h.Typeflag, h.Size, h.Linkname, h.Mode = tar.TypeSymlink, 0, f.link, 0o777
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar entry %s: %w", f.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.body); err != nil {
				return nil, fmt.Errorf("tar entry %s: %w", f.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// layer compresses a tar: gzip by Go's compress/gzip at level 6 (what
// docker and BuildKit produce, so diffah can reproduce the blob), or
// klauspost zstd at its default level with one encoder goroutine (more
// would not change the bytes, but keeps the run cheap).
func layer(files []file, mt types.MediaType) (v1.Layer, error) {
	raw, err := tarOf(files)
	if err != nil {
		return nil, err
	}
	var c bytes.Buffer
	var zw io.WriteCloser
	if strings.Contains(string(mt), "zstd") {
		zw, err = zstd.NewWriter(&c, zstd.WithEncoderConcurrency(1))
	} else {
		zw, err = gzip.NewWriterLevel(&c, 6)
	}
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	blob := c.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }, tarball.WithMediaType(mt))
}

type flavor struct {
	manifest, config, layer types.MediaType
}

var (
	oci    = flavor{types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer}
	docker = flavor{types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer}
	ociZst = flavor{types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayerZStd}
)

func baseFiles(arch string) []file {
	return []file{
		{name: "bin/", dir: true},
		{name: "bin/sh", body: binary(1, 48<<10), mode: 0o755},
		{name: "etc/", dir: true},
		{name: "etc/os-release", body: []byte("NAME=fixture\nVERSION_ID=1\nARCH=" + arch + "\n")},
		{name: "usr/share/doc/README", body: text(2, 300)},
	}
}

// libFiles is the middle layer of the main pair: v2 edits a library and a
// text file, adds one file and deletes another with a whiteout.
func libFiles(v int) []file {
	lib := binary(10, 64<<10)
	data := text(11, 400)
	fs := []file{{name: "usr/lib/", dir: true}, {name: "usr/lib/libfoo.so.1", link: "libfoo.so.1.0"}}
	if v == 1 {
		fs = append(fs, file{name: "usr/lib/libfoo.so.1.0", body: lib}, file{name: "usr/lib/data.txt", body: data},
			file{name: "usr/lib/old.txt", body: text(12, 50)})
	} else {
		d := bytes.Replace(data, []byte("0100"), []byte("0100 changed in v2"), 1)
		fs = append(fs, file{name: "usr/lib/libfoo.so.1.0", body: edit(lib, 13, 6)}, file{name: "usr/lib/data.txt", body: d},
			file{name: "usr/lib/new.txt", body: text(14, 40)}, file{name: "usr/lib/.wh.old.txt"})
	}
	return fs
}

// appFiles is a top layer: a pseudo-binary of size bytes that v2 edits in
// a few places, and a config naming the version.
func appFiles(v int, seed int64, size int) []file {
	bin := binary(seed, size)
	if v == 2 {
		bin = edit(bin, seed+1, 8)
	}
	return []file{{name: "app/", dir: true}, {name: "app/server", body: bin, mode: 0o755},
		{name: "app/config.json", body: []byte(fmt.Sprintf("{\"version\": %d, \"listen\": \":8080\"}\n", v))}}
}

// Sizes of the app binaries: the main pairs carry one big enough for
// intra-file deltas to matter; the many bundle and multi-arch images use a
// smaller one to keep the committed fixtures well under 2 MB.
const (
	mainAppSize  = 200 << 10
	otherAppSize = 96 << 10
)

func image(f flavor, arch string, env string, specs ...[]file) (v1.Image, error) {
	var layers []v1.Layer
	for _, files := range specs {
		l, err := layer(files, f.layer)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return imageOf(f, arch, env, layers...)
}

func imageOf(f flavor, arch string, env string, layers ...v1.Layer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, f.manifest)
	img = mutate.ConfigMediaType(img, f.config)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = arch, "linux"
	cf.Created = v1.Time{Time: mtime}
	cf.Config.Env = []string{"PATH=/usr/bin:/bin", env}
	cf.Config.Cmd = []string{"/app/server"}
	for i := range cf.History {
		cf.History[i].Created = v1.Time{Time: mtime}
	}
	return mutate.ConfigFile(img, cf)
}

func write(dir string, img v1.Image, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err == nil {
		err = p.AppendImage(img, layout.WithAnnotations(map[string]string{refName: "latest"}))
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	return nil
}

func writeIndex(dir string, imgs map[string]v1.Image) error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	archs := make([]string, 0, len(imgs))
	for a := range imgs {
		archs = append(archs, a)
	}
	sort.Strings(archs) // map order would shuffle the index
	for _, a := range archs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: imgs[a], Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}}})
	}
	p, err := layout.Write(dir, empty.Index)
	if err == nil {
		err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refName: "latest"}))
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	return nil
}

// fleetServices are the services of the fleet fixture.
var fleetServices = []string{"amber", "brisk", "calm"}

// fleet writes dir/v1 and dir/v2, one OCI layout each holding one image
// per service (tagged with its name): the base layer of the bundle
// images, then an app layer with the same pseudo-binary under the
// service's own name and its own config; v2 edits the binary the same
// way for every service (a release rolled out to the fleet).
func fleet(dir string) error {
	for _, v := range []int{1, 2} {
		bin := binary(60, fleetAppSize)
		if v == 2 {
			bin = edit(bin, 61, 200) // a new release: changes throughout
		}
		base, err := layer(baseFiles("amd64"), oci.layer)
		if err != nil {
			return err
		}
		p, err := layout.Write(filepath.Join(dir, fmt.Sprintf("v%d", v)), empty.Index)
		if err != nil {
			return err
		}
		for i, svc := range fleetServices {
			app, err := layer([]file{{name: "srv/", dir: true}, {name: "srv/" + svc, body: bin, mode: 0o755},
				{name: "srv/" + svc + ".json", body: []byte(fmt.Sprintf("{\"service\": %q, \"port\": %d, \"release\": %d}\n", svc, 8080+i, v))}}, oci.layer)
			if err != nil {
				return err
			}
			img, err := imageOf(oci, "amd64", fmt.Sprintf("APP_VERSION=%d", v), base, app)
			if err == nil {
				err = p.AppendImage(img, layout.WithAnnotations(map[string]string{refName: svc}))
			}
			if err != nil {
				return fmt.Errorf("writing fleet %s v%d: %w", svc, v, err)
			}
		}
	}
	return nil
}

// fleetAppSize is the fleet fixture's binary: small, as three copies of
// each version are committed.
const fleetAppSize = 32 << 10

func generate(out string) error {
	for _, v := range []int{1, 2} {
		env := fmt.Sprintf("APP_VERSION=%d", v)
		for _, k := range []struct {
			name string
			f    flavor
		}{{"v", oci}, {"docker-v", docker}, {"zstd-v", ociZst}} {
			img, err := image(k.f, "amd64", env, baseFiles("amd64"), libFiles(v), appFiles(v, 20, mainAppSize))
			if err := write(filepath.Join(out, fmt.Sprintf("%s%d", k.name, v)), img, err); err != nil {
				return err
			}
		}
		// Per-arch base layers differ (os-release names the arch); the app
		// layer is the same bytes for both, as for an interpreted program.
		app, err := layer(appFiles(v, 30, otherAppSize), oci.layer)
		if err != nil {
			return err
		}
		imgs := map[string]v1.Image{}
		for _, arch := range []string{"amd64", "arm64"} {
			base, err := layer(baseFiles(arch), oci.layer)
			if err != nil {
				return err
			}
			if imgs[arch], err = imageOf(oci, arch, env, base, app); err != nil {
				return err
			}
		}
		if err := writeIndex(filepath.Join(out, fmt.Sprintf("multi-v%d", v)), imgs); err != nil {
			return err
		}
		base, err := layer(baseFiles("amd64"), oci.layer)
		if err != nil {
			return err
		}
		for i, svc := range []string{"svc-a", "svc-b", "svc-c"} {
			app, err := layer(appFiles(v, int64(40+10*i), otherAppSize), oci.layer)
			if err != nil {
				return err
			}
			img, err := imageOf(oci, "amd64", env, base, app)
			if err := write(filepath.Join(out, "bundle", fmt.Sprintf("%s-v%d", svc, v)), img, err); err != nil {
				return err
			}
		}
	}
	if err := fleet(filepath.Join(out, "fleet")); err != nil {
		return err
	}
	unrel, err := image(oci, "amd64", "UNRELATED=1", []file{{name: "data/blob", body: binary(99, 40<<10)}})
	if err := write(filepath.Join(out, "unrelated"), unrel, err); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "README.md"), []byte(readme), 0o644); err != nil {
		return err
	}
	return sums(out)
}

const readme = `# Test images

Generated by ` + "`go run ./scripts/genfixtures`" + ` (` + "`make fixtures`" + `); deterministic:
fixed seeds, mtimes and entry order, so every run writes the same bytes.
` + "`make lint`" + ` (` + "`go run ./scripts/genfixtures -check`" + `) regenerates them in a
temporary directory and fails if any file differs from SHA256SUMS. Do not
edit these files by hand: change the generator and regenerate.

Every directory is an OCI image layout whose one entry is tagged ` + "`latest`" + `
(` + "`oci:DIR:latest`" + `).

| dir | what |
| --- | --- |
| v1, v2 | OCI media types, 3 gzip layers: base (identical in both), lib (a 64 KiB library edited, a text file changed, a file added, one removed with a whiteout ` + "`usr/lib/.wh.old.txt`" + `), app (a 200 KiB pseudo-binary with eight small edits, and its config) |
| docker-v1, docker-v2 | the same content with Docker schema 2 media types |
| zstd-v1, zstd-v2 | the same content with zstd layers (klauspost encoder, default level) |
| multi-v1, multi-v2 | an OCI image index with linux/amd64 and linux/arm64 images: per-arch base layers, one app layer shared by both |
| bundle/svc-{a,b,c}-v{1,2} | three services sharing one base layer (the same as v1's), each with its own 96 KiB app that changes from v1 to v2 |
| unrelated | an image sharing no layer with the others (wrong-baseline tests) |
| fleet/v1, fleet/v2 | one layout each with three images tagged ` + "`amber`, `brisk`, `calm`" + ` (not ` + "`latest`" + `): the bundle base layer, then an app layer holding the same 32 KiB pseudo-binary under the service's name (` + "`srv/NAME`" + `) and the service's config; v2 edits the binary throughout (200 edits), the same way for all three |

Gzip layers are written by Go's compress/gzip at level 6, so that their
compression can be reproduced.

skopeo 1.9 (Debian 12) does not find Docker-type manifests in an OCI
layout, so ` + "`skopeo inspect oci:docker-v1:latest`" + ` fails; go through
` + "`dir:`" + ` or ` + "`docker-archive:`" + ` (as the tests do) to check the Docker pair with it.
`

// sums writes dir/SHA256SUMS in the format of sha256sum(1), so
// `sha256sum -c SHA256SUMS` also works on it.
func sums(dir string) error {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SHA256SUMS" {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("hashing %s: %w", p, err)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		lines = append(lines, hex.EncodeToString(h.Sum(nil))+"  "+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	if len(lines) == 0 {
		return errors.New("no fixtures written")
	}
	sort.Strings(lines)
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
