package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/blobpatch"
	"github.com/diffah/diffah/deflatetok"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/tarpatch"
)

// textTar is a layer-like tar of text files (a few hundred KiB); edit
// changes a line in one file near the end, the way a rebuilt package
// changes a layer.
func textTar(seed int64, edit bool) []byte {
	r := rand.New(rand.NewSource(seed))
	words := strings.Fields("the quick brown fox jumps over lazy dog package config install libc update binary shared object version release build")
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for i := range 40 {
		var body bytes.Buffer
		for j := 0; body.Len() < 16<<10; j++ {
			fmt.Fprintf(&body, "%d %s %s %s\n", j, words[r.Intn(len(words))], words[r.Intn(len(words))], words[r.Intn(len(words))])
		}
		b := body.Bytes()
		if edit && i == 30 {
			copy(b[100:], "EDITED LINE")
		}
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/share/doc/f%02d.txt", i), Size: int64(len(b)), Mode: 0o644, ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	return tb.Bytes()
}

// cliLayer compresses tarBytes with a command-line compressor.
func cliLayer(t *testing.T, mt types.MediaType, tarBytes []byte, argv ...string) v1.Layer {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(tarBytes)
	blob, err := cmd.Output()
	if err != nil {
		t.Skipf("%s: %v", argv[0], err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type floorDoc struct {
	Version string
	Images  []struct {
		Blobs []struct {
			Role, Kind, Reason, Codec string
			TargetSize                int64
			ShippedSize               int64
			Files                     *struct{ Encoded bool }
		}
	}
	Warnings []string
}

// exportForeign builds v1 and v2 whose one layer a CLI compressor made,
// exports the delta and returns its path and directory.
func exportForeign(t *testing.T, mt types.MediaType, argv ...string) (dir, delta string) {
	t.Helper()
	dir = t.TempDir()
	writeLayout(t, filepath.Join(dir, "v1"), cliLayer(t, mt, textTar(1, false), argv...))
	writeLayout(t, filepath.Join(dir, "v2"), cliLayer(t, mt, textTar(1, true), argv...))
	delta = filepath.Join(dir, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+dir+"/v2", "--baseline", "oci:"+dir+"/v1", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	return dir, delta
}

// TestForeignLayerPatched: a changed layer whose compressor diffah cannot
// replay no longer ships whole: a gzip one (GNU gzip, pigz) travels as a
// model of its compressor (codec diffah-deflate-model/2, sidecar 1.6;
// libdeflate's levels 2–9 diffah-deflate-model/3, sidecar 1.8),
// about the size of the content change; a zstd-CLI one as a patch of its
// compressed bytes (diffah-blob/1, sidecar 1.2), smaller than the blob; a
// libdeflate one names an unknown deflate encoder in its reason; and
// import rebuilds the image exactly.
func TestForeignLayerPatched(t *testing.T) {
	for _, c := range []struct {
		name     string
		mt       types.MediaType
		argv     []string
		patch    string
		codec    string
		maxRatio float64
	}{
		{"gzip-9", types.OCILayer, []string{"gzip", "-9", "-n", "-c"}, "zlib/gzip family, level 9", "diffah-deflate-model/2", 0.02},
		{"pigz-6", types.OCILayer, []string{"pigz", "-6", "-c"}, "zlib/gzip family, level 6", "diffah-deflate-model/2", 0.02},
		{"zstd-cli", types.OCILayerZStd, []string{"zstd", "-q", "-19", "-c"}, "patch of its compressed bytes", "diffah-blob/1", 0},
		// libdeflate's lazy levels have their own model (codec /3, 1.8).
		{"libdeflate-6", types.OCILayer, []string{"libdeflate-gzip", "-6", "-c"}, "libdeflate, level 6", "diffah-deflate-model/3", 0.02},
		// Another algorithm: the reason says so, and what rebuilds it.
		{"libdeflate-12", types.OCILayer, []string{"libdeflate-gzip", "-12", "-c"}, "unknown deflate encoder", "diffah-", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := exec.LookPath(c.argv[0]); err != nil {
				t.Skip(c.argv[0] + " not installed (make deps)")
			}
			dir, delta := exportForeign(t, c.mt, c.argv...)
			var out, errb bytes.Buffer
			if code := run([]string{"inspect", "--json", delta}, nil, &out, &errb); code != 0 {
				t.Fatal(errb.String())
			}
			var doc floorDoc
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			layer := doc.Images[0].Blobs[2]
			t.Logf("%s %d of %d bytes: %s", layer.Codec, layer.ShippedSize, layer.TargetSize, layer.Reason)
			if layer.Kind != "patch" || !strings.Contains(layer.Reason, c.patch) || !strings.HasPrefix(layer.Codec, c.codec) {
				t.Fatalf("layer %+v: want a %s", layer, c.patch)
			}
			if c.maxRatio > 0 && float64(layer.ShippedSize) > c.maxRatio*float64(layer.TargetSize) {
				t.Fatalf("patch is %d bytes for a %d-byte blob, want at most %.0f%%", layer.ShippedSize, layer.TargetSize, 100*c.maxRatio)
			}
			// Deflate output differs from the first changed block on (for
			// this tar, 40% into the blob): without the baseline blob as
			// dictionary the patch would be the blob's size.
			if layer.ShippedSize*10 > layer.TargetSize*7 {
				t.Fatalf("patch is %d bytes for a %d-byte blob: the baseline blob was not used", layer.ShippedSize, layer.TargetSize)
			}
			// 1.2 for the blobpatch codecs; 1.6 for the model codec; 1.4
			// when the layer's tar patch (diffah-deflate/1) records what
			// its files cost.
			want := "1.2"
			switch {
			case layer.Codec == "diffah-deflate-model/2":
				want = "1.6"
			case layer.Codec == "diffah-deflate-model/3":
				want = "1.8"
			case layer.Files != nil && layer.Files.Encoded:
				want = "1.4"
			}
			if doc.Version != want {
				t.Fatalf("sidecar version %q, want %s (codec %s; file costs)", doc.Version, want, c.codec)
			}
			res := filepath.Join(dir, "out")
			if code, e := diffahRun(t, nil, "import", "--baseline", "oci:"+dir+"/v1", "-o", "oci:"+res, delta); code != 0 {
				t.Fatal(e)
			}
			if indexDigest(t, res) != indexDigest(t, filepath.Join(dir, "v2")) {
				t.Fatal("rebuilt image differs from the target")
			}
		})
	}
}

// TestForeignLayerHostile: a sidecar naming a codec this diffah does not
// know, a blobpatch patch with a recompression recipe, a patch payload
// that rebuilds other bytes, and a wrong baseline are all refused with an
// integrity error and nothing written.
func TestForeignLayerHostile(t *testing.T) {
	dir, delta := exportForeign(t, types.OCILayer, "gzip", "-9", "-n", "-c")
	good, _ := os.ReadFile(delta)
	patchOf := func(m map[string]any) map[string]any { return obj(obj(blobsOf(m)[2])["patch"]) }
	cases := []struct {
		name     string
		archive  []byte
		baseline string
		msg      string
	}{
		{"unknown codec", editSidecar(t, good, func(m map[string]any, e []tent) []tent {
			patchOf(m)["codec"] = "diffah-blob/9"
			return e
		}), "", `needs patch codec "diffah-blob/9"`},
		{"recipe on a blob patch", editSidecar(t, good, func(m map[string]any, e []tent) []tent {
			patchOf(m)["recipe"] = map[string]any{"format": "gzip", "impl": "go", "level": 6}
			return e
		}), "", "rebuilds the compressed blob itself"},
		{"payload rebuilds other bytes", editSidecar(t, good, func(m map[string]any, e []tent) []tent {
			// A well-formed payload whose one chunk is a zstd frame of
			// other bytes; its entry's size and digest are made to match.
			for i := range e {
				if strings.HasPrefix(e[i].hdr.Name, "patches/") {
					// A well-formed patch whose tar part rebuilds another
					// tar (no sources needed) and whose form part is empty.
					var other, tp bytes.Buffer
					tw := tar.NewWriter(&other)
					tw.WriteHeader(&tar.Header{Name: "other", Size: 5, Mode: 0o644, Typeflag: tar.TypeReg})
					tw.Write([]byte("other"))
					tw.Close()
					if _, err := tarpatch.Encode(context.Background(), &tp, &other, nil, tarpatch.EncodeOptions{}); err != nil {
						t.Fatal(err)
					}
					var p bytes.Buffer
					deflatetok.WritePatchHeader(&p, deflatetok.PatchHeader{FormSize: 0, TarLen: int64(tp.Len())})
					p.Write(tp.Bytes())
					p.WriteString("DFHBLOB1\x00")
					e[i].data = p.Bytes()
					name := fmt.Sprintf("patches/sha256/%x", sha256Sum(p.Bytes()))
					for _, en := range entriesOf(m) {
						if obj(en)["name"] == e[i].hdr.Name {
							obj(en)["name"], obj(en)["size"] = name, json.Number(fmt.Sprint(p.Len()))
							obj(en)["digest"] = fmt.Sprintf("sha256:%x", sha256Sum(p.Bytes()))
						}
					}
					patchOf(m)["entry"], e[i].hdr.Name = name, name
					// Whichever deflate codec pack kept, this is the
					// tar-plus-parse one.
					patchOf(m)["codec"] = "diffah-deflate/1"
					patchOf(m)["uncompressedSize"] = json.Number(fmt.Sprint(len(textTar(1, true))))
				}
			}
			return e
		}), "", "the patch rebuilt a tar with sha256"},
		{"wrong baseline", good, dir + "/v2", "not in baseline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "d.dlt")
			os.WriteFile(in, c.archive, 0o644)
			base := c.baseline
			if base == "" {
				base = dir + "/v1"
			}
			res := filepath.Join(t.TempDir(), "out")
			code, e := diffahRun(t, nil, "import", "--baseline", "oci:"+base, "-o", "oci:"+res, in)
			if code != int(fault.Integrity) || !strings.Contains(e, c.msg) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d mentioning %q", code, e, fault.Integrity, c.msg)
			}
			if _, err := os.Stat(res); err == nil {
				t.Fatalf("%s was written", res)
			}
		})
	}
}

// TestExportWarnsWhole: export says on stderr which changed layer still
// ships whole and why (here a gzip-CLI layer of fresh noise, which no
// patch makes smaller), and plan names the compressor it found.
func TestExportWarnsWhole(t *testing.T) {
	dir := t.TempDir()
	writeLayout(t, filepath.Join(dir, "v1"), gzipCLILayer(t, 1))
	writeLayout(t, filepath.Join(dir, "v2"), gzipCLILayer(t, 2))
	code, e := diffahRun(t, nil, "export", "--target", "oci:"+dir+"/v2", "--baseline", "oci:"+dir+"/v1", "-o", filepath.Join(dir, "d.dlt"))
	if code != 0 {
		t.Fatal(e)
	}
	if !strings.Contains(e, "layer ships whole") || !strings.Contains(e, "patch of its compressed bytes") {
		t.Fatalf("export stderr lacks the warning:\n%s", e)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"plan", "--target", "oci:" + dir + "/v2", "--baseline", "oci:" + dir + "/v1"}, nil, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	if !strings.Contains(out.String(), "compressed by GNU gzip -n, zlib (gzip wrapper), or zopfli at its best level") {
		t.Fatalf("plan does not name the compressor:\n%s", out.String())
	}
}

// TestForeignLayerInline: the inline token-form codec
// (diffah-deflate-inline/1), which pack keeps when it is the smallest:
// the archive's patch is replaced by one made here with it, and import
// rebuilds the image exactly; the same patch against another blob's form
// is refused.
func TestForeignLayerInline(t *testing.T) {
	argv := []string{"gzip", "-9", "-n", "-c"}
	dir, delta := exportForeign(t, types.OCILayer, argv...)
	compress := func(tb []byte) []byte {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(tb)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	form := func(blob []byte) []byte {
		var f bytes.Buffer
		if err := deflatetok.DecodeInline(context.Background(), &f, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		return f.Bytes()
	}
	oldForm, newForm := form(compress(textTar(1, false))), form(compress(textTar(1, true)))
	good, _ := os.ReadFile(delta)
	withInline := func(src []byte) []byte {
		var p bytes.Buffer
		if _, err := blobpatch.Encode(context.Background(), &p, bytes.NewReader(newForm), int64(len(newForm)), blobSource{bytes.NewReader(src)}, blobpatch.EncodeOptions{}); err != nil {
			t.Fatal(err)
		}
		return editSidecar(t, good, func(m map[string]any, e []tent) []tent {
			pt := obj(obj(blobsOf(m)[2])["patch"])
			pt["codec"], pt["uncompressedSize"] = "diffah-deflate-inline/1", json.Number(fmt.Sprint(len(newForm)))
			for i := range e {
				if strings.HasPrefix(e[i].hdr.Name, "patches/") {
					e[i].data = p.Bytes()
					name := fmt.Sprintf("patches/sha256/%x", sha256Sum(p.Bytes()))
					for _, en := range entriesOf(m) {
						if obj(en)["name"] == e[i].hdr.Name {
							obj(en)["name"], obj(en)["size"] = name, json.Number(fmt.Sprint(p.Len()))
							obj(en)["digest"] = fmt.Sprintf("sha256:%x", sha256Sum(p.Bytes()))
						}
					}
					pt["entry"], e[i].hdr.Name = name, name
				}
			}
			return e
		})
	}
	for _, c := range []struct {
		name string
		src  []byte
		code int
	}{{"rebuilds", oldForm, 0}, {"wrong source", newForm[:len(newForm)/2], int(fault.Integrity)}} {
		t.Run(c.name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "d.dlt")
			os.WriteFile(in, withInline(c.src), 0o644)
			res := filepath.Join(t.TempDir(), "out")
			code, e := diffahRun(t, nil, "import", "--baseline", "oci:"+dir+"/v1", "-o", "oci:"+res, in)
			if code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, e)
			}
			if code == 0 && indexDigest(t, res) != indexDigest(t, filepath.Join(dir, "v2")) {
				t.Fatal("rebuilt image differs from the target")
			}
		})
	}
}

type blobSource struct{ *bytes.Reader }

func (b blobSource) Size() int64 { return b.Reader.Size() }
