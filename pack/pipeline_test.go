package pack_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand"
	"os"
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

	"github.com/diffah/diffah/imgref"
	dlayout "github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/unpack"
)

func mkTar(files map[string][]byte) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range []string{"bin/app", "etc/conf", "lib/data"} {
		if body, ok := files[n]; ok {
			tw.WriteHeader(&tar.Header{Name: n, Size: int64(len(body)), Mode: 0o644, ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
			tw.Write(body)
		}
	}
	tw.Close()
	return b.Bytes()
}

func payload(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := strings.Fields("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu")
	var b bytes.Buffer
	for b.Len() < n {
		if rng.Intn(6) == 0 {
			x := make([]byte, 64)
			rng.Read(x)
			b.Write(x)
		}
		b.WriteString(words[rng.Intn(len(words))] + " ")
	}
	return b.Bytes()[:n]
}

func layerFrom(t *testing.T, blob []byte, mt types.MediaType) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func writeImage(t *testing.T, dir string, layers ...v1.Layer) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		t.Fatal(err)
	}
}

// openOCI opens the OCI layout at p, closed when the test ends.
func openOCI(t *testing.T, p string) *imgref.Image {
	t.Helper()
	img, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: p}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// pipeline runs plan → pack → unpack → resolve through the libraries and
// returns the plan and the rebuilt image's manifest digest.
func pipeline(t *testing.T, dir, target, baseline string) (*plan.Plan, string) {
	t.Helper()
	ctx := context.Background()
	open := func(p string) *imgref.Image { return openOCI(t, p) }
	ti, bi := open(target), open(baseline)
	p, err := plan.Compute(ctx, plan.Input{Ref: "oci:" + target, Image: ti}, &plan.BaselineInput{Ref: "oci:" + baseline, Image: bi}, plan.Options{Name: "img"})
	if err != nil {
		t.Fatal(err)
	}
	var arch bytes.Buffer
	if _, err := pack.Write(ctx, &arch, []*plan.Plan{p}, pack.Options{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := unpack.Read(ctx, &arch, out, unpack.Options{}); err != nil {
		t.Fatal(err)
	}
	rep, err := resolve.Complete(ctx, out, map[string]resolve.Baseline{"": {Ref: "oci:" + baseline, Image: bi}}, resolve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images[0].Status != resolve.StatusOK {
		t.Fatalf("resolve: %+v", rep.Images[0])
	}
	got := open(out)
	d, _ := got.Digest()
	return p, d.String()
}

// TestPatchedRoundTripEveryRecipe: for every compressor diffah can
// reproduce, a changed layer travels as a patch and comes back with the
// same compressed digest.
func TestPatchedRoundTripEveryRecipe(t *testing.T) {
	base := mkTar(map[string][]byte{"etc/conf": []byte("shared")})
	oldFiles := map[string][]byte{"bin/app": payload(1, 400<<10), "lib/data": payload(2, 100<<10)}
	newFiles := map[string][]byte{"bin/app": append(payload(1, 200<<10), append([]byte("a rebuilt section"), payload(1, 400<<10)[200<<10:]...)...), "lib/data": payload(2, 100<<10)}
	oldTar, newTar := mkTar(oldFiles), mkTar(newFiles)
	var recipes []recompress.Recipe
	recipes = append(recipes, recompress.Candidates(recompress.FormatGzip)...)
	recipes = append(recipes, recompress.Candidates(recompress.FormatZstd)...)
	for _, rec := range recipes {
		t.Run(rec.String(), func(t *testing.T) {
			mt := types.OCILayer
			if rec.Format == recompress.FormatZstd {
				mt = types.OCILayerZStd
			}
			enc := func(raw []byte) []byte {
				var b bytes.Buffer
				w, err := rec.NewWriter(&b)
				if err != nil {
					t.Fatal(err)
				}
				w.Write(raw)
				w.Close()
				return b.Bytes()
			}
			dir := t.TempDir()
			baseL := layerFrom(t, enc(base), mt)
			writeImage(t, filepath.Join(dir, "v1"), baseL, layerFrom(t, enc(oldTar), mt))
			writeImage(t, filepath.Join(dir, "v2"), baseL, layerFrom(t, enc(newTar), mt))
			p, got := pipeline(t, dir, filepath.Join(dir, "v2"), filepath.Join(dir, "v1"))
			if p.Blobs[3].Action != sidecar.Patch {
				t.Fatalf("changed layer: %s (%s)", p.Blobs[3].Action, p.Blobs[3].Reason)
			}
			if got != p.Target.Manifest.Digest.String() {
				t.Fatalf("rebuilt %s, target %s", got, p.Target.Manifest.Digest)
			}
		})
	}
}

// TestNotReproducibleShipsWhole: a layer compressed by the gzip CLI cannot
// be recompressed exactly, so it ships whole, the plan says why, and the
// image still comes back byte for byte.
func TestNotReproducibleShipsWhole(t *testing.T) {
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("gzip not installed")
	}
	cli := func(raw []byte) []byte {
		cmd := exec.Command("gzip", "-9", "-n", "-c")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	dir := t.TempDir()
	base := layerFrom(t, cli(mkTar(map[string][]byte{"etc/conf": []byte("x")})), types.OCILayer)
	writeImage(t, filepath.Join(dir, "v1"), base, layerFrom(t, cli(mkTar(map[string][]byte{"bin/app": payload(1, 300<<10)})), types.OCILayer))
	writeImage(t, filepath.Join(dir, "v2"), base, layerFrom(t, cli(mkTar(map[string][]byte{"bin/app": payload(3, 300<<10)})), types.OCILayer))
	p, got := pipeline(t, dir, filepath.Join(dir, "v2"), filepath.Join(dir, "v1"))
	b := p.Blobs[3]
	if b.Action == sidecar.Patch {
		// Only acceptable if a recipe really reproduced the CLI output,
		// which the round trip just proved.
		t.Logf("gzip CLI output was reproduced as %s", b.Patch.Recipe)
	} else if !strings.Contains(b.Reason, "cannot be reproduced") {
		t.Fatalf("reason %q does not say the blob cannot be reproduced", b.Reason)
	}
	if got != p.Target.Manifest.Digest.String() {
		t.Fatal("rebuilt image differs")
	}
}

// TestSyncMismatchFallsBackToSerial: sync points are verified when the
// plan is made, but a resolver whose encoder build cuts its segments
// elsewhere must still rebuild the layer. When a segment does not come
// out as the recipe's sync points say (its output ends before the next
// point: recompress.ErrSyncMismatch; or the joined blob is not the
// layer's), the layer is recompressed serially, with a warning, and the
// image is still the target byte for byte.
func TestSyncMismatchFallsBackToSerial(t *testing.T) {
	gz := func(tarBytes []byte) []byte {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, 6)
		zw.Write(tarBytes)
		zw.Close()
		return b.Bytes()
	}
	content := payload(31, 3<<19)
	edited := append([]byte(nil), content...)
	copy(edited[700<<10:], "an edit in the middle of the layer")
	dir := t.TempDir()
	oldDir, newDir := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	writeImage(t, oldDir, layerFrom(t, gz(mkTar(map[string][]byte{"lib/data": content})), types.OCILayer))
	writeImage(t, newDir, layerFrom(t, gz(mkTar(map[string][]byte{"lib/data": edited, "etc/conf": []byte("v2\n")})), types.OCILayer))
	ctx := context.Background()
	open := func(p string) *imgref.Image { return openOCI(t, p) }
	p, err := plan.Compute(ctx, plan.Input{Ref: "oci:" + newDir, Image: open(newDir)}, &plan.BaselineInput{Ref: "oci:" + oldDir, Image: open(oldDir)}, plan.Options{Name: "img"})
	if err != nil {
		t.Fatal(err)
	}
	var arch bytes.Buffer
	if _, err := pack.Write(ctx, &arch, []*plan.Plan{p}, pack.Options{}); err != nil {
		t.Fatal(err)
	}
	want, _ := open(newDir).Digest()
	gap := int64(recompress.MinSyncSegment)
	for _, tc := range []struct {
		name string
		out  int64 // the bogus point's deflate offset (0: the plan's points)
	}{
		{"verified points", 0},
		{"segment ends before its point", gap + 5*(gap/65535+1) + 1<<10}, // the most validation allows
		{"joined blob differs", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if _, err := unpack.Read(ctx, bytes.NewReader(arch.Bytes()), out, unpack.Options{}); err != nil {
				t.Fatal(err)
			}
			scPath := filepath.Join(out, dlayout.SidecarFile)
			var sc *sidecar.Sidecar
			f, err := os.Open(scPath)
			if err == nil {
				sc, err = sidecar.Parse(f)
				f.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			edited := 0
			for i, b := range sc.Images[0].Blobs {
				if b.Action != sidecar.Patch || b.Patch == nil || b.Patch.Recipe == nil {
					continue
				}
				rec, err := recompress.ParseRecipe(b.Patch.Recipe)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Format != recompress.FormatGzip || rec.Level != 6 || len(rec.Sync) == 0 || rec.Sync[0].In <= gap {
					t.Fatalf("patched layer %s: recipe %s with sync points %v: want gzip -6 with points past %d", b.Digest, rec, rec.Sync, gap)
				}
				edited++
				if tc.out == 0 {
					continue
				}
				rec.Sync = []recompress.SyncPoint{{In: gap, Out: tc.out}}
				if err := rec.Validate(); err != nil {
					t.Fatalf("the bogus sync point must pass validation (only recompressing shows it wrong): %v", err)
				}
				if sc.Images[0].Blobs[i].Patch.Recipe, err = json.Marshal(rec); err != nil {
					t.Fatal(err)
				}
			}
			if edited != 1 {
				t.Fatalf("%d patched layers, want 1", edited)
			}
			enc, err := sc.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(scPath, enc, 0o644); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			rep, err := resolve.Complete(ctx, out, map[string]resolve.Baseline{"": {Ref: "oci:" + oldDir, Image: open(oldDir)}},
				resolve.Options{Jobs: 2, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("resolve: %v\n%s", err, logs.String())
			}
			if got, _ := open(out).Digest(); got != want || rep.Images[0].Status != resolve.StatusOK {
				t.Fatalf("rebuilt %s (%+v), target %s", got, rep.Images, want)
			}
			wantFallbacks := 1
			if tc.out == 0 {
				wantFallbacks = 0
			}
			if n := strings.Count(logs.String(), "recompressing it serially"); n != wantFallbacks {
				t.Fatalf("%d serial fallbacks logged, want %d:\n%s", n, wantFallbacks, logs.String())
			}
		})
	}
}
