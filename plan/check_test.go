package plan

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// fixturePair plans the v2 fixture against v1 as `diffah plan` does, and
// derives what pack compares it with (intra-layer off).
func fixturePair(t testing.TB) (honest, derived *Plan) {
	t.Helper()
	ctx := context.Background()
	ti, bi := fixtureImages(t)
	mk := func(intra string) *Plan {
		p, err := Compute(ctx, Input{Ref: "oci:v2", Platform: ti.Platform, Image: ti}, &BaselineInput{Ref: "oci:v1", Image: bi},
			Options{Name: "v2", IntraLayer: intra, Jobs: 1})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return mk(IntraAuto), mk(IntraOff)
}

// fixtureImages opens the v2 fixture and its v1 baseline.
func fixtureImages(t testing.TB) (target, baseline *imgref.Image) {
	t.Helper()
	open := func(dir, platform string) *imgref.Image {
		img, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: "../testdata/images/" + dir}, imgref.Options{Platform: platform})
		if err != nil {
			t.Skipf("fixtures: %v (run make fixtures)", err)
		}
		return img
	}
	target = open("v2", "")
	return target, open("v1", target.Platform)
}

func clone(t testing.TB, p *Plan) *Plan {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestCheck covers what pack's table (pack/plancheck_test.go) cannot
// reach through real images: the plan and the images disagreeing on
// whether there is a baseline, a patch of a layer that is no tar, more
// sources than the sidecar allows; and that the honest plan passes, with
// and without its decisions changed to others that are as possible.
func TestCheck(t *testing.T) {
	honest, derived := fixturePair(t)
	if err := Check(clone(t, honest), derived, nil); err != nil {
		t.Fatalf("honest plan refused: %v", err)
	}
	allShip := clone(t, honest)
	for i := range allShip.Blobs {
		allShip.Blobs[i].Action, allShip.Blobs[i].Patch, allShip.Blobs[i].Recipe = sidecar.Ship, nil, nil
	}
	allShip.Sum()
	if err := Check(allShip, derived, nil); err != nil {
		t.Fatalf("shipping everything is always possible: %v", err)
	}
	noBase := clone(t, derived)
	noBase.Baseline = nil
	src := honest.Blobs[3].Patch.Sources[0]
	cases := []struct {
		name, field string
		want        *Plan
		edit        func(p *Plan)
	}{
		{"baseline the images lack", ".baseline", noBase, func(p *Plan) {}},
		{"patch of a layer that is no tar", ".blobs[3].action", nil, func(p *Plan) {
			p.Blobs[3].MediaType = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
		}},
		{"too many sources", ".blobs[3].patch.sources", nil, func(p *Plan) {
			for range MaxPatchSources {
				p.Blobs[3].Patch.Sources = append(p.Blobs[3].Patch.Sources, src)
			}
		}},
		{"totals", "totals", nil, func(p *Plan) { p.Totals.Blobs++ }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := clone(t, honest)
			want := derived
			if c.want != nil {
				want = c.want
			}
			if c.name == "patch of a layer that is no tar" {
				// The images must agree on the media type, so that only
				// the decision is wrong.
				want = clone(t, derived)
				want.Blobs[3].MediaType = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
			}
			c.edit(p)
			if c.name != "totals" {
				p.Sum()
			}
			err := Check(p, want, nil)
			if err == nil || fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("got %v, want an integrity error naming %s", err, c.field)
			}
		})
	}
}

// FuzzCheck: whatever plan the parser accepts, Check never panics, and a
// plan it passes agrees with the images on every blob and makes only
// possible decisions.
func FuzzCheck(f *testing.F) {
	honest, derived := fixturePair(f)
	seed := func(p *Plan) {
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(honest)
	seed(derived)
	lie := clone(f, honest)
	lie.Blobs[3].Action, lie.Blobs[3].Patch = sidecar.Reuse, nil
	lie.Sum()
	seed(lie)
	held := map[digest.Digest]bool{derived.Baseline.Config: true}
	layers := map[digest.Digest]sidecar.Source{}
	for _, l := range derived.Baseline.Layers {
		held[l.Digest] = true
		layers[l.Digest] = l
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		if err := Check(p, derived, nil); err != nil {
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("not an integrity error: %v", err)
			}
			return
		}
		if p.Target.Manifest != derived.Target.Manifest || p.Target.Config != derived.Target.Config || len(p.Blobs) != len(derived.Blobs) {
			t.Fatal("passed a plan whose target is not the image's")
		}
		for i, b := range p.Blobs {
			w := derived.Blobs[i]
			if b.Descriptor != w.Descriptor || b.Role != w.Role || b.DiffID != w.DiffID || b.From != "" {
				t.Fatalf("passed blob %d %+v, the image has %+v", i, b.Descriptor, w.Descriptor)
			}
			switch b.Action {
			case sidecar.Reuse:
				if !held[b.Digest] {
					t.Fatalf("passed a reuse of %s, which the baseline lacks", b.Digest)
				}
			case sidecar.Patch:
				if b.Patch.Codec != tarpatch.Codec {
					t.Fatalf("passed codec %q", b.Patch.Codec)
				}
				if _, err := recompress.ParseRecipe(json.RawMessage(b.Patch.Recipe)); err != nil {
					t.Fatalf("passed recipe %s: %v", b.Patch.Recipe, err)
				}
				for _, s := range b.Patch.Sources {
					if l, ok := layers[s.Digest]; !ok || l != s {
						t.Fatalf("passed source %+v, the baseline has %+v", s, l)
					}
				}
			}
		}
	})
}
