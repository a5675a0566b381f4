package resolve_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/sidecar"
)

// uncompressedArchive writes img as `docker save` does: the config, and
// every layer as its uncompressed tar named by diffID (so the blobs the
// registry form names are not there byte for byte). corrupt, when >= 0,
// flips a byte of that layer (its config still promises the old diffID).
func uncompressedArchive(t *testing.T, img v1.Image, corrupt int) resolve.Baseline {
	t.Helper()
	path := filepath.Join(t.TempDir(), "saved.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	cfg, _ := img.RawConfigFile()
	cname, _ := img.ConfigName()
	layers, _ := img.Layers()
	entry := map[string]any{"Config": cname.Hex + ".json", "RepoTags": []string{"example.com/app:v1"}}
	var names []string
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if i == corrupt {
			b[len(b)/3] ^= 0xff
		}
		d, _ := l.DiffID()
		names = append(names, d.Hex+".tar")
		add(d.Hex+".tar", b)
	}
	entry["Layers"] = names
	add(cname.Hex+".json", cfg)
	mj, _ := json.Marshal([]any{entry})
	add("manifest.json", mj)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ref := "docker-archive:" + path
	r, _ := imgref.Parse(ref)
	bi, err := imgref.Open(context.Background(), r, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bi.Close() })
	return resolve.Baseline{Ref: ref, Image: bi}
}

// TestDiffIDBaseline: a delta planned against the registry form of v1
// (gzip blobs) resolves against v1 as `docker save` keeps it (uncompressed
// layers): the reused layer is rebuilt from its diffID with the recorded
// recipe, patches read the uncompressed layers, and the result is v2 byte
// for byte.
func TestDiffIDBaseline(t *testing.T) {
	for _, pair := range [][2]string{{"v2", "v1"}, {"docker-v2", "docker-v1"}, {"zstd-v2", "zstd-v1"}} {
		t.Run(pair[0], func(t *testing.T) {
			dir := unpacked(t, [3]string{"img", pair[0], pair[1]})
			base := uncompressedArchive(t, open(t, filepath.Join(fixtures, pair[1])), -1)
			// The archive really lacks the blobs by digest.
			m, _ := base.Image.Manifest()
			want := open(t, filepath.Join(fixtures, pair[0]))
			wm, _ := want.Manifest()
			if m.Layers[0].Digest == wm.Layers[0].Digest {
				t.Fatal("the uncompressed baseline holds the compressed blob: nothing is tested")
			}
			rep, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": base}, resolve.Options{})
			if err != nil {
				t.Fatal(err)
			}
			wd, _ := want.Digest()
			if got, _ := open(t, dir).Digest(); got != wd || rep.Images[0].Status != resolve.StatusOK {
				t.Fatalf("rebuilt %s (%+v), target %s", got, rep.Images, wd)
			}
			if rep.Images[0].Reused != 1 || rep.Images[0].Patched != 2 {
				t.Fatalf("report %+v: the test should cover reused and patched layers", rep.Images[0])
			}
		})
	}
}

// TestDiffIDBaselineWithoutRecipe: a delta without a recipe for the
// reused layer (an older producer, or a compressor nobody reproduces)
// cannot use an uncompressed baseline for it; preflight says which layer
// and why, before writing anything.
func TestDiffIDBaselineWithoutRecipe(t *testing.T) {
	dir := unpacked(t, [3]string{"img", "v2", "v1"})
	scPath := filepath.Join(dir, layout.SidecarFile)
	raw, err := os.ReadFile(scPath)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sidecar.ParseBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	var stripped string
	for i, b := range sc.Images[0].Blobs {
		if b.Action == sidecar.Reuse && b.Role == sidecar.RoleLayer {
			if b.Recipe == nil {
				t.Fatal("plan recorded no recipe for the reused layer")
			}
			sc.Images[0].Blobs[i].Recipe = nil
			stripped = b.Digest.String()
		}
	}
	out, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	base := uncompressedArchive(t, open(t, filepath.Join(fixtures, "v1")), -1)
	rep, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": base}, resolve.Options{})
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("err %v, want integrity", err)
	}
	if len(rep.Images[0].Missing) != 1 || rep.Images[0].Missing[0].Digest.String() != stripped ||
		!strings.Contains(rep.Images[0].Missing[0].Why, "same diffID") || !strings.Contains(rep.Images[0].Missing[0].Why, "no recipe") {
		t.Fatalf("missing %+v, want only %s, explained", rep.Images[0].Missing, stripped)
	}
	if snapshot(t, dir) != before {
		t.Fatal("a failed preflight wrote")
	}
	// An unrelated baseline: neither the blob nor its diffID.
	rep, _ = resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": baseline(t, "unrelated")}, resolve.Options{})
	for _, m := range rep.Images[0].Missing {
		if !strings.Contains(m.Why, "nor a layer with its diffID") {
			t.Errorf("missing %s: %q does not say the diffID is absent too", m.Digest, m.Why)
		}
	}
}

// TestDiffIDBaselineCorrupt: a saved layer whose content is not the diffID
// its config promises fails the rebuild with an integrity error, and
// nothing is swapped in.
func TestDiffIDBaselineCorrupt(t *testing.T) {
	for _, which := range []int{0, 1} { // 0: the reused layer; 1: a patch source
		dir := unpacked(t, [3]string{"img", "v2", "v1"})
		before := snapshot(t, dir)
		base := uncompressedArchive(t, open(t, filepath.Join(fixtures, "v1")), which)
		_, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": base}, resolve.Options{})
		if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("layer %d corrupt: err %v, want an integrity error calling the baseline corrupt", which, err)
		}
		if snapshot(t, dir) != before {
			t.Fatalf("layer %d corrupt: the layout changed", which)
		}
	}
}
