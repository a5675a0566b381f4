package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// gzipCLILayer is a one-file layer of noise compressed by the gzip
// command, whose output diffah cannot reproduce.
func gzipCLILayer(t *testing.T, seed int64) v1.Layer {
	t.Helper()
	l, err := gzipCLILayerOf(seed)
	if errors.Is(err, exec.ErrNotFound) {
		t.Skipf("gzip: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// gzipCLILayerOf is gzipCLILayer's layer, or why it could not be made.
func gzipCLILayerOf(seed int64) (v1.Layer, error) {
	body := make([]byte, 200<<10)
	// All noise: no patch (of the tar, the compressed bytes or the
	// deflate tokens) can make one version from the other.
	rand.New(rand.NewSource(seed)).Read(body)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "bin/app", Size: int64(len(body)), Mode: 0o755, ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	cmd := exec.Command("gzip", "-9", "-n", "-c")
	cmd.Stdin = &tb
	blob, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }, tarball.WithMediaType(types.OCILayer))
}

func writeLayout(t *testing.T, dir string, layers ...v1.Layer) {
	t.Helper()
	if err := writeLayoutOf(dir, layers...); err != nil {
		t.Fatal(err)
	}
}

// writeLayoutOf writes a new OCI layout at dir holding one image of
// layers.
func writeLayoutOf(dir string, layers ...v1.Layer) error {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img)
}

// TestNonReproducibleEndToEnd: a changed layer compressed by the gzip CLI
// whose content is unrelated to the baseline's (noise) ships whole: no
// recipe rebuilds it and no patch of its compressed bytes or deflate
// tokens is smaller; inspect says why and warns, and import still
// rebuilds the image exactly.
func TestNonReproducibleEndToEnd(t *testing.T) {
	dir := t.TempDir()
	v1dir, v2dir := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	writeLayout(t, v1dir, gzipCLILayer(t, 1))
	writeLayout(t, v2dir, gzipCLILayer(t, 2))
	delta := filepath.Join(dir, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+v2dir, "--baseline", "oci:"+v1dir, "-o", delta); code != 0 {
		t.Fatal(e)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"inspect", "--json", delta}, nil, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	var doc struct {
		Images []struct {
			Blobs []struct {
				Role, Kind, Reason string
			}
		}
		Warnings []string
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	layer := doc.Images[0].Blobs[2]
	if layer.Kind != "full" || !strings.Contains(layer.Reason, "cannot be reproduced") {
		t.Fatalf("layer: %+v, want shipped whole because it cannot be reproduced", layer)
	}
	if len(doc.Warnings) == 0 || !strings.Contains(strings.Join(doc.Warnings, "\n"), "cannot be reproduced") {
		t.Fatalf("warnings %q lack the non-reproducible layer", doc.Warnings)
	}
	out.Reset()
	if code := run([]string{"inspect", delta}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "ships whole: its compressed blob cannot be reproduced") {
		t.Fatalf("text inspect (exit %d):\n%s", code, out.String())
	}
	res := filepath.Join(dir, "out")
	if code, e := diffahRun(t, nil, "import", "--baseline", "oci:"+v1dir, "-o", "oci:"+res, delta); code != 0 {
		t.Fatal(e)
	}
	if indexDigest(t, res) != indexDigest(t, v2dir) {
		t.Fatal("rebuilt image differs from the target")
	}
}
