// Command genfixtures writes the small, deterministic test images under
// testdata/images (OCI layouts) and their SHA256SUMS. Every byte derives
// from fixed seeds and a fixed mtime, so two runs give identical files;
// `-check` regenerates into a temporary directory and compares with the
// committed checksums.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
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

var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("o", "testdata/images", "output directory")
	check := flag.Bool("check", false, "regenerate into a temp dir and compare with OUT/SHA256SUMS")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("genfixtures: ")
	if *check {
		tmp, err := os.MkdirTemp("", "genfixtures-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		if err := generate(tmp); err != nil {
			log.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(*out, "SHA256SUMS"))
		if err != nil {
			log.Fatalf("%v (run `make fixtures`)", err)
		}
		got, _ := os.ReadFile(filepath.Join(tmp, "SHA256SUMS"))
		if !bytes.Equal(want, got) {
			log.Fatalf("fixtures drifted from %s/SHA256SUMS: run `make fixtures` and commit", *out)
		}
		return
	}
	if err := os.RemoveAll(*out); err != nil {
		log.Fatal(err)
	}
	if err := generate(*out); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", *out)
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
// runs with some randomness, compressible like a real executable.
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

// edit returns a copy of b with a few local changes (a rebuilt binary).
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

func tarball_(files []file) []byte {
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
			log.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(f.body)
		}
	}
	tw.Close()
	return b.Bytes()
}

// layer compresses a tar: gzip by Go's compress/gzip at level 6 (what
// docker and BuildKit use), or klauspost zstd at its default level.
func layer(files []file, mt types.MediaType) v1.Layer {
	raw := tarball_(files)
	var c bytes.Buffer
	if strings.Contains(string(mt), "zstd") {
		zw, _ := zstd.NewWriter(&c, zstd.WithEncoderConcurrency(1))
		zw.Write(raw)
		zw.Close()
	} else {
		zw, _ := gzip.NewWriterLevel(&c, 6)
		zw.Write(raw)
		zw.Close()
	}
	blob := c.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		log.Fatal(err)
	}
	return l
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

func appFiles(v int, seed int64) []file {
	bin := binary(seed, 96<<10)
	if v == 2 {
		bin = edit(bin, seed+1, 8)
	}
	return []file{{name: "app/", dir: true}, {name: "app/server", body: bin, mode: 0o755},
		{name: "app/config.json", body: []byte(fmt.Sprintf("{\"version\": %d, \"listen\": \":8080\"}\n", v))}}
}

func image(f flavor, arch string, env string, layers ...v1.Layer) v1.Image {
	img := mutate.MediaType(empty.Image, f.manifest)
	img = mutate.ConfigMediaType(img, f.config)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		log.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		log.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = arch, "linux"
	cf.Created = v1.Time{Time: mtime}
	cf.Config.Env = []string{"PATH=/usr/bin:/bin", env}
	cf.Config.Cmd = []string{"/app/server"}
	for i := range cf.History {
		cf.History[i].Created = v1.Time{Time: mtime}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		log.Fatal(err)
	}
	return img
}

func write(dir string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"}))
}

func writeIndex(dir string, imgs map[string]v1.Image) error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	archs := make([]string, 0, len(imgs))
	for a := range imgs {
		archs = append(archs, a)
	}
	sort.Strings(archs)
	for _, a := range archs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: imgs[a], Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}}})
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"}))
}

func generate(out string) error {
	for _, v := range []int{1, 2} {
		env := fmt.Sprintf("APP_VERSION=%d", v)
		for name, f := range map[string]flavor{"v": oci, "docker-v": docker, "zstd-v": ociZst} {
			img := image(f, "amd64", env, layer(baseFiles("amd64"), f.layer), layer(libFiles(v), f.layer), layer(appFiles(v, 20), f.layer))
			if err := write(filepath.Join(out, fmt.Sprintf("%s%d", name, v)), img); err != nil {
				return err
			}
		}
		imgs := map[string]v1.Image{}
		for _, arch := range []string{"amd64", "arm64"} {
			imgs[arch] = image(oci, arch, env, layer(baseFiles(arch), oci.layer), layer(appFiles(v, 30), oci.layer))
		}
		if err := writeIndex(filepath.Join(out, fmt.Sprintf("multi-v%d", v)), imgs); err != nil {
			return err
		}
		base := layer(baseFiles("amd64"), oci.layer)
		for i, svc := range []string{"svc-a", "svc-b", "svc-c"} {
			img := image(oci, "amd64", env, base, layer(appFiles(v, int64(40+10*i)), oci.layer))
			if err := write(filepath.Join(out, "bundle", fmt.Sprintf("%s-v%d", svc, v)), img); err != nil {
				return err
			}
		}
	}
	unrel := image(oci, "amd64", "UNRELATED=1", layer([]file{{name: "data/blob", body: binary(99, 40<<10)}}, oci.layer))
	if err := write(filepath.Join(out, "unrelated"), unrel); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "README.md"), []byte(readme), 0o644); err != nil {
		return err
	}
	return sums(out)
}

const readme = `# Test images

Generated by ` + "`go run ./scripts/genfixtures`" + ` (deterministic; ` + "`make lint`" + ` checks
SHA256SUMS). Every directory is an OCI image layout tagged ` + "`latest`" + `.

| dir | what |
| --- | --- |
| v1, v2 | OCI media types, 3 gzip layers: base (identical), lib (a binary edited, a text file changed, a file added, one removed with a whiteout), app (a 96 KiB binary with small edits) |
| docker-v1, docker-v2 | the same content with Docker schema 2 media types |
| zstd-v1, zstd-v2 | the same content with zstd layers (klauspost encoder) |
| multi-v1, multi-v2 | an OCI image index with linux/amd64 and linux/arm64 images |
| bundle/svc-{a,b,c}-v{1,2} | three services sharing one base layer |
| unrelated | an image sharing nothing with the others |

Gzip layers are written by Go's compress/gzip at level 6 so that their
compression is reproducible.
`

func sums(dir string) error {
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "SHA256SUMS" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, hex.EncodeToString(s[:])+"  "+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(lines)
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}
