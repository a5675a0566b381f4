package plan

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
)

func openFixture(t *testing.T, name string) *imgref.Image {
	t.Helper()
	img, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: filepath.Join("..", "testdata", "images", name)}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// TestReuseRecipes: a reused layer gets the recipe that reproduces its
// blob (the fixtures are gzip level 6 by Go's compress/gzip), so a
// baseline holding it uncompressed can serve it; the plan round-trips.
func TestReuseRecipes(t *testing.T) {
	p, err := Compute(context.Background(), Input{Ref: "oci:v2", Image: openFixture(t, "v2")},
		&BaselineInput{Ref: "oci:v1", Image: openFixture(t, "v1")}, Options{Name: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range p.Blobs {
		if b.Action != sidecar.Reuse || b.Role != sidecar.RoleLayer {
			if b.Recipe != nil {
				t.Errorf("%s %s (%s) carries a blob-level recipe", b.Role, b.Digest, b.Action)
			}
			continue
		}
		n++
		rec, err := recompress.ParseRecipe(b.Recipe)
		if err != nil {
			t.Fatalf("reused layer %s: recipe %s: %v", b.Digest, b.Recipe, err)
		}
		if rec.String() != "gzip/go/6" || !strings.Contains(b.Reason, "gzip/go/6") {
			t.Errorf("reused layer %s: recipe %s, reason %q", b.Digest, rec, b.Reason)
		}
	}
	if n == 0 {
		t.Fatal("no reused layer: nothing tested")
	}
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// 1.3: its patches are diffah-tar/4, which came after recipes (1.1).
	if !bytes.Contains(raw, []byte(`"version": "1.3"`)) {
		t.Fatalf("plan version is not 1.3")
	}
	back, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Marshal(); !bytes.Equal(again, raw) {
		t.Fatal("plan with recipes does not round-trip")
	}
	// A recipe anywhere else is refused.
	back.Blobs[1].Recipe = json.RawMessage(`{"format":"gzip"}`)
	if err := back.Validate(); err == nil || !strings.Contains(err.Error(), "recipe belongs only") {
		t.Fatalf("recipe on the config: %v", err)
	}
}

// TestReuseWithoutRecipe: a reused layer nothing reproduces (a
// multi-member gzip, as concatenated gzip output is) has no recipe, and
// its reason says what that means.
func TestReuseWithoutRecipe(t *testing.T) {
	var tarball bytes.Buffer
	for i := 0; i < 2; i++ {
		zw := gzip.NewWriter(&tarball)
		zw.Write(bytes.Repeat([]byte("member "), 1000))
		zw.Close()
	}
	shared := static.NewLayer(tarball.Bytes(), types.OCILayer)
	mk := func(extra string) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, shared, static.NewLayer([]byte(extra), types.OCIUncompressedLayer))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	p, err := Compute(context.Background(), Input{Ref: "oci:t", Image: mk("new")}, &BaselineInput{Ref: "oci:b", Image: mk("old")}, Options{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	b := p.Blobs[2]
	if b.Action != sidecar.Reuse || b.Recipe != nil || !strings.Contains(b.Reason, "no recompression recipe") || !strings.Contains(b.Reason, "only uncompressed") {
		t.Fatalf("reused multi-member layer: %s, recipe %s, reason %q", b.Action, b.Recipe, b.Reason)
	}
}

// uncompressedTwin is img with every layer stored as its uncompressed tar,
// as an engine or a docker save archive holds it.
func uncompressedTwin(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Layer
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		out = append(out, static.NewLayer(b.Bytes(), types.OCIUncompressedLayer))
	}
	twin, err := mutate.AppendLayers(empty.Image, out...)
	if err != nil {
		t.Fatal(err)
	}
	return twin
}

// TestReuseByDiffID: planned against a baseline that holds layers
// uncompressed, a target layer with the same content (diffID) is reused
// with its recipe rather than shipped or patched, and the other way round
// (an uncompressed target against a compressed baseline: recipe "none").
func TestReuseByDiffID(t *testing.T) {
	v1img, v2img := openFixture(t, "v1"), openFixture(t, "v2")
	for _, tc := range []struct {
		name             string
		target, baseline v1.Image
		recipe           string
	}{
		{"uncompressed baseline", v2img, uncompressedTwin(t, v1img), "gzip/go/6"},
		{"uncompressed target", uncompressedTwin(t, v2img), v1img, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compute(context.Background(), Input{Ref: "oci:t", Image: tc.target}, &BaselineInput{Ref: "oci:b", Image: tc.baseline}, Options{Name: "t"})
			if err != nil {
				t.Fatal(err)
			}
			base := p.Blobs[2] // the base layer, the same content in both
			if base.Action != sidecar.Reuse || !strings.Contains(base.Reason, "compressed otherwise") {
				t.Fatalf("base layer: %s (%s)", base.Action, base.Reason)
			}
			rec, err := recompress.ParseRecipe(base.Recipe)
			if err != nil || rec.String() != tc.recipe {
				t.Fatalf("base layer recipe %s (%v), want %s", base.Recipe, err, tc.recipe)
			}
			for _, b := range p.Blobs[3:] {
				if b.Action == sidecar.Reuse {
					t.Errorf("changed layer %s reused", b.Digest)
				}
			}
			if p.Totals.Reused != 1 {
				t.Fatalf("totals %+v", p.Totals)
			}
		})
	}
}

// unreadable fails to read one blob: a registry the test must not touch.
type unreadable struct {
	v1.Image
	blob v1.Hash
}

func (u unreadable) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := u.Image.LayerByDigest(h)
	if err != nil || h != u.blob {
		return l, err
	}
	return failingLayer{l}, nil
}

type failingLayer struct{ v1.Layer }

func (failingLayer) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("the registry was read")
}

// TestReuseRecipesSource: with the target in a registry and the baseline
// local, a blob reused by digest is read from the baseline (the same
// bytes) rather than downloaded; --reused-recipes off reads neither.
func TestReuseRecipesSource(t *testing.T) {
	v1img, v2img := openFixture(t, "v1"), openFixture(t, "v2")
	m, _ := v2img.Manifest()
	target := unreadable{v2img, m.Layers[0].Digest} // the reused base layer
	p, err := Compute(context.Background(), Input{Ref: "docker://reg.local/app:2", Image: target}, &BaselineInput{Ref: "oci:v1", Image: v1img}, Options{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Blobs[2].Action != sidecar.Reuse || p.Blobs[2].Recipe == nil {
		t.Fatalf("base layer: %s, recipe %s (%s)", p.Blobs[2].Action, p.Blobs[2].Recipe, p.Blobs[2].Reason)
	}
	// A local target is read as before: the wrapper makes that fail.
	if _, err := Compute(context.Background(), Input{Ref: "oci:v2", Image: target}, &BaselineInput{Ref: "oci:v1", Image: v1img}, Options{Name: "app"}); err == nil || !strings.Contains(err.Error(), "the registry was read") {
		t.Fatalf("local target: %v, want the target's blob read", err)
	}
	p, err = Compute(context.Background(), Input{Ref: "oci:v2", Image: target}, &BaselineInput{Ref: "oci:v1", Image: v1img}, Options{Name: "app", ReusedRecipes: ReusedRecipesOff})
	if err != nil {
		t.Fatal(err)
	}
	if p.Blobs[2].Action != sidecar.Reuse || p.Blobs[2].Recipe != nil || p.Blobs[2].Reason != "present in the baseline" {
		t.Fatalf("off: base layer %s, recipe %s (%s)", p.Blobs[2].Action, p.Blobs[2].Recipe, p.Blobs[2].Reason)
	}
}
