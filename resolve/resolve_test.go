package resolve_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/unpack"
)

var fixtures = filepath.Join("..", "testdata", "images")

func open(t *testing.T, dir string) *imgref.Image {
	t.Helper()
	img, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: dir}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// unpacked plans and packs each (name, target, baseline) into one archive
// and unpacks it; it returns the partial layout's directory.
func unpacked(t *testing.T, imgs ...[3]string) string {
	t.Helper()
	ctx := context.Background()
	var plans []*plan.Plan
	for _, im := range imgs {
		target, base := filepath.Join(fixtures, im[1]), filepath.Join(fixtures, im[2])
		p, err := plan.Compute(ctx, plan.Input{Ref: "oci:" + target, Image: open(t, target)},
			&plan.BaselineInput{Ref: "oci:" + base, Image: open(t, base)}, plan.Options{Name: im[0]})
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p)
	}
	return packUnpacked(t, plans)
}

// packUnpacked packs plans into one archive and unpacks it; it returns
// the partial layout's directory.
func packUnpacked(t *testing.T, plans []*plan.Plan) string {
	t.Helper()
	ctx := context.Background()
	var arch bytes.Buffer
	if _, err := pack.Write(ctx, &arch, plans, pack.Options{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "lay")
	if _, err := unpack.Read(ctx, &arch, dir, unpack.Options{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func baseline(t *testing.T, name string) resolve.Baseline {
	dir := filepath.Join(fixtures, name)
	return resolve.Baseline{Ref: "oci:" + dir, Image: open(t, dir)}
}

// snapshot lists every file under dir with its size, to tell whether a
// failed run wrote anything.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			fmt.Fprintf(&b, "%s %v %d %d\n", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		}
		return nil
	})
	return b.String()
}

func TestCompleteByteExact(t *testing.T) {
	for _, pair := range [][2]string{{"v2", "v1"}, {"docker-v2", "docker-v1"}, {"zstd-v2", "zstd-v1"}} {
		t.Run(pair[0], func(t *testing.T) {
			dir := unpacked(t, [3]string{"img", pair[0], pair[1]})
			rep, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": baseline(t, pair[1])}, resolve.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := open(t, filepath.Join(fixtures, pair[0])).Digest()
			if len(rep.Images) != 1 || rep.Images[0].Status != resolve.StatusOK || rep.Images[0].ManifestDigest.String() != want.String() {
				t.Fatalf("report %+v, want one ok image %s", rep.Images, want)
			}
			if got, _ := open(t, dir).Digest(); got != want {
				t.Fatalf("rebuilt %s, target %s", got, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "diffah")); !os.IsNotExist(err) {
				t.Fatalf("the sidecar directory is left behind: %v", err)
			}
			// A complete layout resolves again as "verified".
			rep, err = resolve.Complete(context.Background(), dir, nil, resolve.Options{})
			if err != nil || rep.Images[0].Status != resolve.StatusOK {
				t.Fatalf("re-resolve: %v %+v", err, rep)
			}
		})
	}
}

// TestPreflight: a wrong or missing baseline fails before anything is
// written, and every missing blob is listed at once.
func TestPreflight(t *testing.T) {
	dir := unpacked(t, [3]string{"img", "v2", "v1"})
	before := snapshot(t, dir)
	for _, tc := range []struct {
		name  string
		bases map[string]resolve.Baseline
		kind  fault.Kind
		want  []string
	}{
		{"wrong baseline", map[string]resolve.Baseline{"": baseline(t, "unrelated")}, fault.Integrity,
			[]string{"not reachable", "reused layer not in baseline", "patch source for layer", "preflight failed, nothing written"}},
		{"no baseline", nil, fault.Partial, []string{"no baseline given", "nothing written"}},
		{"unknown image name", map[string]resolve.Baseline{"other": baseline(t, "v1")}, fault.Usage, []string{`no image "other"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := resolve.Complete(context.Background(), dir, tc.bases, resolve.Options{})
			if err == nil {
				t.Fatalf("resolved: %+v", rep)
			}
			if k := fault.KindOf(err, 0); k != tc.kind {
				t.Fatalf("kind %v, want %v: %v", k, tc.kind, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Fatalf("a failed preflight changed the layout")
			}
		})
	}
	// The wrong baseline lacks the reused base layer and both patch
	// sources: each is named.
	_, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": baseline(t, "unrelated")}, resolve.Options{})
	if n := strings.Count(err.Error(), "not in baseline"); n < 3 {
		t.Fatalf("%d missing blobs listed, want all (>= 3):\n%v", n, err)
	}
}

// TestBundlePartial: in a bundle, an image whose baseline is wrong is
// skipped and the others resolve (exit category Partial); --strict
// writes nothing.
func TestBundlePartial(t *testing.T) {
	imgs := [][3]string{{"a", "bundle/svc-a-v2", "bundle/svc-a-v1"}, {"b", "bundle/svc-b-v2", "bundle/svc-b-v1"}, {"c", "bundle/svc-c-v2", "bundle/svc-c-v1"}}
	bases := func(t *testing.T) map[string]resolve.Baseline {
		return map[string]resolve.Baseline{"a": baseline(t, "bundle/svc-a-v1"), "b": baseline(t, "unrelated"), "c": baseline(t, "bundle/svc-c-v1")}
	}

	dir := unpacked(t, imgs...)
	before := snapshot(t, dir)
	if _, err := resolve.Complete(context.Background(), dir, bases(t), resolve.Options{Strict: true}); fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("strict: %v, want an integrity error", err)
	}
	if snapshot(t, dir) != before {
		t.Fatal("strict run wrote to the layout")
	}

	rep, err := resolve.Complete(context.Background(), dir, bases(t), resolve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{rep.Images[0].Status, rep.Images[1].Status, rep.Images[2].Status}
	if strings.Join(got, ",") != "ok,skipped,ok" || rep.Worst() != fault.Partial {
		t.Fatalf("statuses %v (worst %v), want ok,skipped,ok (partial)", got, rep.Worst())
	}
	if !strings.Contains(rep.Images[1].Reason, "not in baseline") || len(rep.Images[1].Missing) == 0 {
		t.Fatalf("skipped image's reason does not list the missing blobs: %+v", rep.Images[1])
	}
	// The skipped image resolves once its right baseline is given.
	all := bases(t)
	all["b"] = baseline(t, "bundle/svc-b-v1")
	rep, err = resolve.Complete(context.Background(), dir, all, resolve.Options{})
	if err != nil || rep.Worst() != 0 {
		t.Fatalf("rerun: %v %+v", err, rep)
	}
}

// TestCorruptShippedBlob: a shipped blob damaged after unpack is caught
// (preflight by size, verification by digest) and the layout is left as
// it was.
func TestCorruptShippedBlob(t *testing.T) {
	dir := unpacked(t, [3]string{"img", "v2", "v1"})
	cfg, err := open(t, filepath.Join(fixtures, "v2")).ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "blobs", "sha256", cfg.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	_, err = resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": baseline(t, "v1")}, resolve.Options{})
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), cfg.Hex[:12]) {
		t.Fatalf("corrupt config: %v, want an integrity error naming it", err)
	}
	if snapshot(t, dir) != before {
		t.Fatal("a failed resolve changed the layout")
	}
}
