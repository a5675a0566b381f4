package pack_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/unpack"
)

// TestCrossReuseRecipe: a layer a bundle image reuses from another
// image's baseline (a new service on the same base) carries the recipe
// of its blob, as layers reused from the image's own baseline do, so an
// engine baseline can serve it by diffID.
func TestCrossReuseRecipe(t *testing.T) {
	ctx := context.Background()
	fx := filepath.Join("..", "testdata", "images", "bundle")
	open := func(name string) *imgref.Image {
		img, err := imgref.Open(ctx, imgref.Ref{Transport: imgref.OCI, Path: filepath.Join(fx, name)}, imgref.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { img.Close() })
		return img
	}
	a, err := plan.Compute(ctx, plan.Input{Ref: "oci:" + filepath.Join(fx, "svc-a-v2"), Image: open("svc-a-v2")},
		&plan.BaselineInput{Ref: "oci:" + filepath.Join(fx, "svc-a-v1"), Image: open("svc-a-v1")}, plan.Options{Name: "svc-a"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := plan.Compute(ctx, plan.Input{Ref: "oci:" + filepath.Join(fx, "svc-c-v2"), Image: open("svc-c-v2")}, nil, plan.Options{Name: "svc-c"})
	if err != nil {
		t.Fatal(err)
	}
	var arch bytes.Buffer
	if _, err := pack.Write(ctx, &arch, []*plan.Plan{a, c}, pack.Options{}); err != nil {
		t.Fatal(err)
	}
	head, err := unpack.Head(&arch, unpack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	im, _ := head.Sidecar.Image("svc-c")
	n := 0
	for _, b := range im.Blobs {
		if b.Action != sidecar.Reuse || b.Role != sidecar.RoleLayer || b.From != "svc-a" {
			continue
		}
		n++
		rec, err := recompress.ParseRecipe(b.Recipe)
		if err != nil || rec.String() != "gzip/go/6" {
			t.Errorf("layer %s reused from svc-a: recipe %s (%v)", b.Digest, b.Recipe, err)
		}
	}
	if n == 0 {
		t.Fatal("no layer of svc-c is reused from svc-a's baseline: nothing tested")
	}
}
