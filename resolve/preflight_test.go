package resolve_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/unpack"
)

// readSidecar reads the sidecar unpack left in dir.
func readSidecar(t *testing.T, dir string) *sidecar.Sidecar {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, layout.SidecarFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc, err := sidecar.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// copyFixture copies a fixture layout to a temporary directory.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(fixtures, name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// reusedAndSource picks, from an image's sidecar entry, one reused layer
// and one patch source (different blobs).
func reusedAndSource(t *testing.T, im *sidecar.Image) (reused, source sidecar.Blob, src sidecar.Source) {
	t.Helper()
	for _, b := range im.Blobs {
		if b.Action == sidecar.Reuse && b.Role == sidecar.RoleLayer && reused.Digest == "" {
			reused = b
		}
	}
	for _, b := range im.Blobs {
		if b.Action == sidecar.Patch && len(b.Patch.Sources) > 0 && b.Patch.Sources[0].Digest != reused.Digest && src.Digest == "" {
			source, src = b, b.Patch.Sources[0]
		}
	}
	if reused.Digest == "" || src.Digest == "" {
		t.Fatalf("fixture has no reused layer and patch source: %+v", im.Blobs)
	}
	return reused, source, src
}

// TestPreflightFindsBlobsGoneFromBaseline: the baseline's manifest still
// lists a reused layer and a patch source, but their files are gone (or
// have the wrong size): preflight finds both before anything is written,
// lists both, and the error is integrity (exit 4), not a mid-build
// environment error.
func TestPreflightFindsBlobsGoneFromBaseline(t *testing.T) {
	for _, damage := range []string{"removed", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			dir := unpacked(t, [3]string{"img", "v2", "v1"})
			reused, _, src := reusedAndSource(t, &readSidecar(t, dir).Images[0])
			base := copyFixture(t, "v1")
			for _, d := range []string{reused.Digest.String(), src.Digest.String()} {
				p := layout.BlobPath(base, digestOf(d))
				if damage == "removed" {
					os.Remove(p)
				} else {
					os.Truncate(p, 10)
				}
			}
			before := snapshot(t, filepath.Dir(dir))
			rep, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": {Ref: "oci:" + base, Image: open(t, base)}}, resolve.Options{})
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("want integrity error, got %v", err)
			}
			for _, d := range []string{reused.Digest.String(), src.Digest.String()} {
				if !strings.Contains(err.Error(), d) {
					t.Errorf("error does not list %s:\n%v", d, err)
				}
			}
			if !strings.Contains(err.Error(), "nothing written") {
				t.Errorf("error does not say nothing was written: %v", err)
			}
			if rep == nil || len(rep.Images) != 1 || len(rep.Images[0].Missing) < 2 {
				t.Fatalf("report: %+v", rep)
			}
			if after := snapshot(t, filepath.Dir(dir)); after != before {
				t.Fatalf("a failed preflight wrote:\n%s\nvs\n%s", before, after)
			}
			// Check (import --dry-run, and import before unpacking) finds
			// the same.
			_, err = resolve.Check(readSidecar(t, dir), map[string]resolve.Baseline{"": {Ref: "oci:" + base, Image: open(t, base)}}, resolve.Options{})
			if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), reused.Digest.String()) || !strings.Contains(err.Error(), src.Digest.String()) {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

// TestPreflightBundleOtherBaseline: in a bundle, an image new to the
// site reuses a layer from, and is patched against, another image's
// baseline (cross-image delta). Both blobs are checked in that baseline's
// store, and both are listed when its files are gone.
func TestPreflightBundleOtherBaseline(t *testing.T) {
	ctx := context.Background()
	target := func(n string) plan.Input {
		p := filepath.Join(fixtures, n)
		return plan.Input{Ref: "oci:" + p, Image: open(t, p)}
	}
	basePath := filepath.Join(fixtures, "bundle/svc-a-v1")
	one, err := plan.Compute(ctx, target("bundle/svc-b-v2"), &plan.BaselineInput{Ref: "oci:" + basePath, Image: open(t, basePath)}, plan.Options{Name: "one"})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := plan.Compute(ctx, target("bundle/svc-a-v2"), nil, plan.Options{Name: "new"})
	if err != nil {
		t.Fatal(err)
	}
	var arch bytes.Buffer
	if _, err := pack.Write(ctx, &arch, []*plan.Plan{one, fresh}, pack.Options{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "lay")
	if _, err := unpack.Read(ctx, &arch, dir, unpack.Options{}); err != nil {
		t.Fatal(err)
	}
	sc := readSidecar(t, dir)
	im, ok := sc.Image("new")
	if !ok {
		t.Fatal("no image new")
	}
	var gone []digest.Digest
	for _, b := range im.Blobs {
		if b.Action == sidecar.Reuse && b.From == "one" {
			gone = append(gone, b.Digest)
		}
		if b.Action == sidecar.Patch {
			for _, s := range b.Patch.Sources {
				if s.Image == "one" && !slices.Contains(gone, s.Digest) {
					gone = append(gone, s.Digest)
				}
			}
		}
	}
	if len(gone) < 2 {
		t.Fatalf("the cross-image fixture should reuse and patch from image one: %+v", im.Blobs)
	}
	base := copyFixture(t, "bundle/svc-a-v1")
	for _, d := range gone {
		os.Remove(layout.BlobPath(base, d))
	}
	before := snapshot(t, filepath.Dir(dir))
	_, err = resolve.Complete(ctx, dir, map[string]resolve.Baseline{"one": {Ref: "oci:" + base, Image: open(t, base)}}, resolve.Options{Strict: true})
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("want integrity error, got %v", err)
	}
	for _, d := range gone {
		if !strings.Contains(err.Error(), "image \"new\"") || !strings.Contains(err.Error(), d.String()) {
			t.Errorf("error does not list %s for image new:\n%v", d, err)
		}
	}
	if after := snapshot(t, filepath.Dir(dir)); after != before {
		t.Fatal("a failed preflight wrote")
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
