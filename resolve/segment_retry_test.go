package resolve_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/deflatetok"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/sidecar"
)

// segmentOnlyTar is a layer tar whose Go gzip -6 blob has a byte-aligned
// block boundary (at, the first one past recompress.DefaultSyncSegment:
// the sync point plan will pick) that a segment compressed on its own
// from there does not reproduce: 4 KiB after it, the tar repeats 200
// bytes that start 3 bytes before it. The serial encoder finds that
// match; a primed segment encoder cannot (its dictionary's last three
// positions are not hashed). So the blob the segments give, with a sync
// point there, is another valid gzip of the same tar, which only the
// segment writer makes.
func segmentOnlyTar(t *testing.T) (layerTar []byte, at recompress.SyncPoint) {
	t.Helper()
	rng := rand.New(rand.NewPCG(14, 14))
	var body bytes.Buffer
	for body.Len() < 5<<20 {
		// Word-like text over a wide alphabet: compressible, with few
		// long repeats, so the planted one is the match to find.
		for n := 2 + rng.IntN(8); n > 0; n-- {
			body.WriteByte(byte('a' + rng.IntN(26)))
		}
		body.WriteByte(" \n"[rng.IntN(2)])
	}
	tarOf := func(b []byte) []byte {
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		if err := tw.WriteHeader(&tar.Header{Name: "usr/share/words.txt", Size: int64(len(b)), Mode: 0o644, ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
		tw.Close()
		return tb.Bytes()
	}
	firstCut := func(tb []byte) recompress.SyncPoint {
		z := goGzip6(t, tb)
		var cut recompress.SyncPoint
		_, err := deflatetok.Blocks(context.Background(), bytes.NewReader(z), func(b deflatetok.Block) error {
			if cut.In == 0 && b.Bit%8 == 0 && b.Content >= recompress.DefaultSyncSegment {
				cut = recompress.SyncPoint{In: b.Content, Out: b.Bit / 8}
			}
			return nil
		})
		if err != nil || cut.In == 0 {
			t.Fatalf("no byte-aligned block past %d: %v", recompress.DefaultSyncSegment, err)
		}
		return cut
	}
	tb := tarOf(body.Bytes())
	at = firstCut(tb)
	const hdr = 512 // the tar header before the body
	b := body.Bytes()
	copy(b[at.In-hdr+4096:], b[at.In-hdr-3:at.In-hdr+197])
	tb = tarOf(b)
	if got := firstCut(tb); got != at {
		t.Fatalf("the planted repeat moved the cut from %+v to %+v", at, got)
	}
	return tb, at
}

func goGzip6(t *testing.T, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, 6)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// compressed is b compressed by w's writer.
func compressed(t *testing.T, b []byte, newWriter func(io.Writer) (io.WriteCloser, error)) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := newWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// segmentOnlyImages writes a target layout whose one layer is the blob
// only the segments give (of segmentOnlyTar), and a baseline whose layer
// is that tar with a few bytes changed (any gzip: it is read, not
// rebuilt). It returns the layouts and the target blob.
func segmentOnlyImages(t *testing.T) (target, base string, blob []byte) {
	t.Helper()
	tb, at := segmentOnlyTar(t)
	rec := recompress.Recipe{Format: recompress.FormatGzip, Impl: recompress.ImplGo, Level: 6, Sync: []recompress.SyncPoint{at}}
	blob = compressed(t, tb, func(w io.Writer) (io.WriteCloser, error) { return rec.NewSegmentWriter(w, 1) })
	if bytes.Equal(blob, goGzip6(t, tb)) {
		t.Fatal("the segments give the serial blob: the case is not shown")
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, tb) {
		t.Fatalf("the segment blob is not a gzip of the tar: %v", err)
	}
	old := bytes.Clone(tb)
	copy(old[100<<10:], "a changed line\n")
	dir := t.TempDir()
	target, base = filepath.Join(dir, "v2"), filepath.Join(dir, "v1")
	for _, l := range []struct {
		dir  string
		blob []byte
	}{{target, blob}, {base, goGzip6(t, old)}} {
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l.blob)), nil }, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
		p, err := ggcrlayout.Write(l.dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
	}
	return target, base, blob
}

// segmentOnlyUnpacked plans (the layer proven by its segments), packs
// and unpacks the segment-only pair; it returns the partial layout, the
// baseline and the patched layer's sidecar entry.
func segmentOnlyUnpacked(t *testing.T) (dir string, base resolve.Baseline, layer sidecar.Blob, blob []byte) {
	t.Helper()
	target, basedir, blob := segmentOnlyImages(t)
	p, err := plan.Compute(context.Background(), plan.Input{Ref: "oci:" + target, Image: open(t, target)},
		&plan.BaselineInput{Ref: "oci:" + basedir, Image: open(t, basedir)}, plan.Options{Name: "img"})
	if err != nil {
		t.Fatal(err)
	}
	dir = packUnpacked(t, []*plan.Plan{p})
	for _, b := range readSidecar(t, dir).Images[0].Blobs {
		if b.Role == sidecar.RoleLayer {
			layer = b
		}
	}
	if layer.Action != sidecar.Patch || layer.Patch == nil {
		t.Fatalf("the layer is not patched: %+v", layer)
	}
	rec, err := recompress.ParseRecipe(layer.Patch.Recipe)
	if err != nil || len(rec.Sync) == 0 {
		t.Fatalf("recipe %s: %v; want sync points", layer.Patch.Recipe, err)
	}
	return dir, resolve.Baseline{Ref: "oci:" + basedir, Image: open(t, basedir)}, layer, blob
}

// TestSerialMissRetriesBySegments: plan proved a layer by its segments,
// and its blob is one the serial writer does not give. Resolve with one
// job rebuilds it serially, misses the digest, says so, and rebuilds it
// from its segments: the blob comes out byte for byte.
func TestSerialMissRetriesBySegments(t *testing.T) {
	dir, base, layer, blob := segmentOnlyUnpacked(t)
	var log bytes.Buffer
	rep, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": base},
		resolve.Options{Jobs: 1, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	if len(rep.Images) != 1 || rep.Images[0].Status != resolve.StatusOK || rep.Images[0].Patched != 1 {
		t.Fatalf("report %+v, want one ok image with one patched layer", rep.Images)
	}
	if !strings.Contains(log.String(), "serial recompression did not reproduce the layer; recompressing it by its segments") {
		t.Fatalf("no retry by segments in the log:\n%s", log.String())
	}
	got, err := os.ReadFile(layout.BlobPath(dir, layer.Digest))
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("the rebuilt layer is not the blob (%d bytes, %v)", len(got), err)
	}
}

// TestSegmentRetryMisses: when the segments miss the digest too (here:
// the sidecar's sync point moved by a byte, as a different encoder build
// would disagree), resolve fails with an integrity error naming the
// layer and saying the recipe does not reproduce it, and leaves the
// layout as it was.
func TestSegmentRetryMisses(t *testing.T) {
	dir, base, layer, _ := segmentOnlyUnpacked(t)
	scPath := filepath.Join(dir, layout.SidecarFile)
	sc := readSidecar(t, dir)
	for i, b := range sc.Images[0].Blobs {
		if b.Digest != layer.Digest {
			continue
		}
		rec, err := recompress.ParseRecipe(b.Patch.Recipe)
		if err != nil {
			t.Fatal(err)
		}
		rec.Sync[0].Out--
		if sc.Images[0].Blobs[i].Patch.Recipe, err = json.Marshal(rec); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	var log bytes.Buffer
	_, err = resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": base},
		resolve.Options{Jobs: 1, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), layer.Digest.String()) || !strings.Contains(err.Error(), "does not reproduce") {
		t.Fatalf("segments missing too: %v; want an integrity error naming layer %s\nlog:\n%s", err, layer.Digest, log.String())
	}
	t.Logf("segments missing too: %v", err)
	if !strings.Contains(log.String(), "recompressing it by its segments") {
		t.Fatalf("the segments were not tried:\n%s", log.String())
	}
	if snapshot(t, dir) != before {
		t.Fatal("a failed resolve changed the layout")
	}
	if _, err := os.Stat(layout.BlobPath(dir, layer.Digest)); !os.IsNotExist(err) {
		t.Fatalf("the layer's blob exists: %v", err)
	}
}
