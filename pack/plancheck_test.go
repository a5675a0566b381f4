package pack_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
)

// The fixtures, by a relative path so that the archives (which name the
// refs) do not depend on where the tree is checked out.
const fx = "../testdata/images"

func openFixture(t *testing.T, ref, platform string) *imgref.Image {
	t.Helper()
	r, err := imgref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imgref.Open(context.Background(), r, imgref.Options{Platform: platform})
	if err != nil {
		t.Skipf("fixture %s: %v (run make fixtures)", ref, err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// fixturePlan plans target against baseline (an oci: ref, "manifest:FILE"
// for --baseline-manifest, or "" for none) as `diffah plan` does.
func fixturePlan(t *testing.T, name, target, baseline, platform, intra string) *plan.Plan {
	t.Helper()
	ti := openFixture(t, target, platform)
	var base *plan.BaselineInput
	switch {
	case strings.HasPrefix(baseline, "manifest:"):
		file := strings.TrimPrefix(baseline, "manifest:")
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		base = &plan.BaselineInput{ManifestFile: file, RawManifest: raw}
	case baseline != "":
		base = &plan.BaselineInput{Ref: baseline, Image: openFixture(t, baseline, ti.Platform)}
	}
	p, err := plan.Compute(context.Background(), plan.Input{Ref: target, Platform: ti.Platform, IndexDigest: ti.IndexDigest, Image: ti}, base,
		plan.Options{Name: name, IntraLayer: intra, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// reread is what a plan goes through between `diffah plan` and `diffah
// pack`: JSON out, JSON in, strictly.
func reread(t *testing.T, ps ...*plan.Plan) []*plan.Plan {
	t.Helper()
	var out []*plan.Plan
	for _, p := range ps {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		q, err := plan.Parse(b)
		if err != nil {
			t.Fatalf("an edited plan must still parse, so that pack's check is what refuses it: %v", err)
		}
		out = append(out, q)
	}
	return out
}

func v1Manifest(t *testing.T) string {
	t.Helper()
	raw, err := openFixture(t, "oci:"+fx+"/v1", "").RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "v1-manifest.json")
	if err := os.WriteFile(f, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPackRefusesEditedPlans: one case per kind of lie a hand-edited plan
// can tell. Each edited plan still parses (totals are recomputed), and
// pack refuses it with an integrity error naming the blob and the field,
// before writing a byte.
func TestPackRefusesEditedPlans(t *testing.T) {
	v2, v1 := "oci:"+fx+"/v2", "oci:"+fx+"/v1"
	single := fixturePlan(t, "v2", v2, v1, "", plan.IntraAuto)
	// The cases rely on this shape: manifest, config, a reused layer, two
	// patched layers, each patch with two sources.
	if len(single.Blobs) != 5 || single.Blobs[2].Action != sidecar.Reuse || single.Blobs[3].Action != sidecar.Patch ||
		single.Blobs[4].Action != sidecar.Patch || len(single.Blobs[3].Patch.Sources) != 2 {
		t.Fatalf("unexpected fixture plan shape")
	}
	mfile := v1Manifest(t)
	byManifest := fixturePlan(t, "v2", v2, "manifest:"+mfile, "", plan.IntraAuto)
	otherRaw, _ := openFixture(t, v1, "").RawManifest()
	var bundle []*plan.Plan
	for _, s := range []string{"svc-a", "svc-b", "svc-c"} {
		bundle = append(bundle, fixturePlan(t, s, "oci:"+fx+"/bundle/"+s+"-v2", "oci:"+fx+"/bundle/"+s+"-v1", "", plan.IntraAuto))
	}
	multi := fixturePlan(t, "multi", "oci:"+fx+"/multi-v2", "oci:"+fx+"/multi-v1", "linux/arm64", plan.IntraAuto)

	d := func(i int) string { return single.Blobs[i].Digest.String() }
	zero := "sha256:" + strings.Repeat("0", 64)
	type edit func(ps []*plan.Plan)
	cases := []struct {
		name  string
		base  []*plan.Plan
		indep bool
		edit  edit
		blob  string // the blob the message must name ("" = none)
		field string // the plan field it must name
	}{
		{"layer dropped", nil, false, func(ps []*plan.Plan) { ps[0].Blobs = append(ps[0].Blobs[:3], ps[0].Blobs[4]) }, d(3), ".blobs[3]"},
		{"last layer dropped", nil, false, func(ps []*plan.Plan) { ps[0].Blobs = ps[0].Blobs[:4] }, d(4), "missing from the plan"},
		{"layer duplicated", nil, false, func(ps []*plan.Plan) { ps[0].Blobs = append(ps[0].Blobs, ps[0].Blobs[4]) }, d(4), ".blobs[5]"},
		{"layers swapped", nil, false, func(ps []*plan.Plan) { b := ps[0].Blobs; b[3], b[4] = b[4], b[3] }, d(4), ".blobs[3].digest"},
		{"layer digest changed", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[4].Digest = digest.Digest(zero) }, zero, ".blobs[4].digest"},
		{"layer size", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[2].Size++ }, d(2), ".blobs[2].size"},
		{"layer media type", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[4].MediaType = "application/vnd.oci.image.layer.v1.tar" }, d(4), ".blobs[4].mediaType"},
		{"layer diffID", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[3].DiffID = digest.Digest(zero) }, d(3), ".blobs[3].diffID"},
		{"config size", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[1].Size++ }, d(1), ".blobs[1].size"},
		{"config digest", nil, false, func(ps []*plan.Plan) {
			ps[0].Blobs[1].Digest = ps[0].Baseline.Config
			ps[0].Target.Config = ps[0].Baseline.Config
		}, "", ".target.config"},
		{"manifest raw of another image", nil, false, func(ps []*plan.Plan) {
			m := sidecar.Descriptor{MediaType: ps[0].Target.Manifest.MediaType, Digest: digest.FromBytes(otherRaw), Size: int64(len(otherRaw))}
			ps[0].Target.Raw, ps[0].Target.Manifest, ps[0].Blobs[0].Descriptor = otherRaw, m, m
		}, digest.FromBytes(otherRaw).String(), ".target.manifest.digest"},
		{"manifest media type", nil, false, func(ps []*plan.Plan) {
			ps[0].Target.Manifest.MediaType = "application/vnd.docker.distribution.manifest.v2+json"
			ps[0].Blobs[0].MediaType = ps[0].Target.Manifest.MediaType
		}, d(0), ".target.manifest.mediaType"},
		{"platform", nil, false, func(ps []*plan.Plan) { ps[0].Target.Platform = "linux/s390x" }, "", ".target.platform"},
		{"index digest", nil, false, func(ps []*plan.Plan) { ps[0].Target.IndexDigest = digest.Digest(zero) }, "", ".target.indexDigest"},
		{"multi index digest", []*plan.Plan{multi}, false, func(ps []*plan.Plan) { ps[0].Target.IndexDigest = digest.Digest(zero) }, "", ".target.indexDigest"},
		{"reuse of a layer the baseline lacks", nil, false, func(ps []*plan.Plan) {
			ps[0].Blobs[3].Action, ps[0].Blobs[3].Patch = sidecar.Reuse, nil
		}, d(3), ".blobs[3].action"},
		{"reuse of a config the baseline lacks", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[1].Action = sidecar.Reuse }, d(1), ".blobs[1].action"},
		{"reuse without a baseline manifest's layer", []*plan.Plan{byManifest}, false, func(ps []*plan.Plan) {
			ps[0].Blobs[3].Action = sidecar.Reuse
		}, byManifest.Blobs[3].Digest.String(), ".blobs[3].action"},
		{"recipe level", nil, false, func(ps []*plan.Plan) { setRecipe(ps[0], 3, `{"format":"gzip","impl":"go","level":9}`) }, d(3), ".blobs[3].patch.recipe"},
		{"recipe implementation", nil, false, func(ps []*plan.Plan) { setRecipe(ps[0], 4, `{"format":"gzip","impl":"klauspost","level":6}`) }, d(4), ".blobs[4].patch.recipe"},
		{"recipe format", nil, false, func(ps []*plan.Plan) {
			setRecipe(ps[0], 3, `{"format":"zstd","impl":"klauspost","level":2,"concurrency":1}`)
		}, d(3), ".blobs[3].patch.recipe"},
		{"recipe uncompressed", nil, false, func(ps []*plan.Plan) { setRecipe(ps[0], 3, `{"format":"none"}`) }, d(3), ".blobs[3].patch.recipe"},
		// Recipes the one recipe parser refuses (unknown field, invalid
		// level) never reach pack: plan.Parse refuses them
		// (plan.TestParseRefusesHostileFields).
		{"recipe gzip header", nil, false, func(ps []*plan.Plan) { setRecipe(ps[0], 3, `{"format":"gzip","impl":"go","level":6,"name":"x.tar"}`) }, d(3), ".blobs[3].patch.recipe"},
		{"patch codec", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[3].Patch.Codec = "bsdiff" }, d(3), ".blobs[3].patch.codec"},
		{"patch source the baseline lacks", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[3].Patch.Sources[1].Digest = digest.Digest(zero) }, d(3), ".blobs[3].patch.sources[1]"},
		{"patch source size", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[4].Patch.Sources[0].Size-- }, d(4), ".blobs[4].patch.sources[0].size"},
		{"patch source diffID", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[4].Patch.Sources[1].DiffID = digest.Digest(zero) }, d(4), ".blobs[4].patch.sources[1].diffID"},
		{"patch source media type", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[4].Patch.Sources[1].MediaType = "application/x-tar" }, d(4), ".blobs[4].patch.sources[1].mediaType"},
		{"patch source twice", nil, false, func(ps []*plan.Plan) { s := ps[0].Blobs[4].Patch.Sources; s[1] = s[0] }, d(4), ".blobs[4].patch.sources[1]"},
		{"patch source of an image not in the bundle", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[4].Patch.Sources[0].Image = "elsewhere" }, d(4), ".blobs[4].patch.sources[0].image"},
		{"patch from a baseline manifest", []*plan.Plan{byManifest}, false, func(ps []*plan.Plan) {
			ps[0].Blobs[3].Action = sidecar.Patch
			ps[0].Blobs[3].Patch = single.Blobs[3].Patch
		}, byManifest.Blobs[3].Digest.String(), ".blobs[3].patch.sources[0]"},
		{"baseline changed", nil, false, func(ps []*plan.Plan) { ps[0].Baseline.ManifestDigest = digest.Digest(zero) }, "", ".baseline.manifestDigest"},
		{"baseline config", nil, false, func(ps []*plan.Plan) { ps[0].Baseline.Config = digest.Digest(zero) }, "", ".baseline.config"},
		{"baseline layer added", nil, false, func(ps []*plan.Plan) {
			ps[0].Baseline.Layers = append(ps[0].Baseline.Layers, sidecar.Source{Descriptor: ps[0].Blobs[3].Descriptor, DiffID: ps[0].Blobs[3].DiffID})
		}, "", ".baseline.layers"},
		{"baseline layer size", nil, false, func(ps []*plan.Plan) { ps[0].Baseline.Layers[1].Size++ }, "", ".baseline.layers[1].size"},
		{"baseline layer diffID", nil, false, func(ps []*plan.Plan) { ps[0].Baseline.Layers[2].DiffID = digest.Digest(zero) }, "", ".baseline.layers[2].diffID"},
		{"baseline names nothing", nil, false, func(ps []*plan.Plan) { ps[0].Baseline.Ref = "" }, "", ".baseline.ref"},
		{"baseline manifest file changed", []*plan.Plan{byManifest}, false, func(ps []*plan.Plan) {
			f := filepath.Join(filepath.Dir(mfile), "other.json")
			os.WriteFile(f, append(otherRaw, '\n'), 0o644)
			ps[0].Baseline.ManifestFile = f
		}, "", ".baseline.manifestDigest"},
		{"from an image not in the bundle", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[2].From = "other" }, d(2), ".blobs[2].from"},
		{"from on a shipped blob", nil, false, func(ps []*plan.Plan) { ps[0].Blobs[1].From = "other" }, d(1), ".blobs[1].from"},
		{"bundle: from its own image", bundle, false, func(ps []*plan.Plan) { ps[0].Blobs[2].From = "svc-a" }, "", ".blobs[2].from"},
		{"bundle: reuse from a baseline that lacks it", bundle, false, func(ps []*plan.Plan) {
			ps[0].Blobs[3].Action, ps[0].Blobs[3].Patch, ps[0].Blobs[3].From = sidecar.Reuse, nil, "svc-b"
		}, bundle[0].Blobs[3].Digest.String(), ".blobs[3].action"},
		{"bundle: patch source another baseline lacks", bundle, false, func(ps []*plan.Plan) {
			ps[1].Blobs[3].Patch.Sources[0].Image = "svc-c"
		}, bundle[1].Blobs[3].Digest.String(), ".blobs[3].patch.sources[0]"},
		{"bundle: one plan's recipe lies", bundle, false, func(ps []*plan.Plan) {
			setRecipe(ps[2], 3, `{"format":"gzip","impl":"go","level":1}`)
		}, bundle[2].Blobs[3].Digest.String(), ".blobs[3].patch.recipe"},
		{"bundle --independent: from another image", bundle, true, func(ps []*plan.Plan) { ps[0].Blobs[2].From = "svc-b" }, "", ".blobs[2].from"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := c.base
			if base == nil {
				base = []*plan.Plan{single}
			}
			ps := reread(t, base...)
			c.edit(ps)
			for _, p := range ps {
				p.Sum()
			}
			// Every lie passes the parser: the check is pack's.
			ps = reread(t, ps...)
			var out bytes.Buffer
			_, err := pack.Write(context.Background(), &out, ps, pack.Options{Jobs: 2, Independent: c.indep})
			if err == nil {
				t.Fatal("pack accepted the edited plan")
			}
			if k := fault.KindOf(err, 0); k != fault.Integrity {
				t.Fatalf("kind %v, want integrity: %v", k, err)
			}
			if !strings.Contains(err.Error(), c.blob) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error does not name blob %q and field %q: %v", c.blob, c.field, err)
			}
			if fault.HintOf(err) == "" {
				t.Fatalf("no hint: %v", err)
			}
			if out.Len() != 0 {
				t.Fatalf("pack wrote %d bytes before refusing", out.Len())
			}
		})
	}
}

func setRecipe(p *plan.Plan, i int, js string) { p.Blobs[i].Patch.Recipe = json.RawMessage(js) }

// TestPackAcceptsHonestEdits: what a plan may say that plan would not
// have, but that is true of the images, is accepted — a bundle blob
// reused from another image's baseline that holds it, a patch source in
// another image's baseline, a layer shipped instead of patched or reused,
// a platform left out.
func TestPackAcceptsHonestEdits(t *testing.T) {
	var bundle []*plan.Plan
	for _, s := range []string{"svc-a", "svc-b", "svc-c"} {
		bundle = append(bundle, fixturePlan(t, s, "oci:"+fx+"/bundle/"+s+"-v2", "oci:"+fx+"/bundle/"+s+"-v1", "", plan.IntraAuto))
	}
	ps := reread(t, bundle...)
	ps[0].Blobs[2].From = "svc-b"
	ps[0].Target.Platform = "" // not recorded (library callers)
	other := bundle[2].Baseline.Layers[1]
	other.Image = "svc-c"
	ps[1].Blobs[3].Patch.Sources = append(ps[1].Blobs[3].Patch.Sources, other)
	ps[2].Blobs[2].Action, ps[2].Blobs[2].Recipe = sidecar.Ship, nil
	ps[2].Blobs[3].Action, ps[2].Blobs[3].Patch = sidecar.Ship, nil
	for _, p := range ps {
		p.Sum()
	}
	ps = reread(t, ps...)
	var out bytes.Buffer
	if _, err := pack.Write(context.Background(), &out, ps, pack.Options{Jobs: 2}); err != nil {
		t.Fatalf("honest edits refused: %v", err)
	}
}

// TestHonestPlansPackAsBefore: the check changes no byte of what honest
// plans pack to. The sums are those of the archives the code at 5dcf63e
// (before pack checked plans) wrote for the same plans; a deliberate
// change of the archive format updates them (the test logs the new ones;
// the cases with patches changed with format diffah-tar/2, again
// with diffah-tar/3: new magic, a shift per dictionary range, sidecar 1.3,
// and with diffah-tar/4: small layers in the edit form, sidecar 1.7).
func TestHonestPlansPackAsBefore(t *testing.T) {
	// Archives name their refs and the baseline manifest file: run in a
	// directory where those names do not depend on the checkout.
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	wd := t.TempDir()
	if err := os.CopyFS(filepath.Join(wd, "fx"), os.DirFS(filepath.Join(here, fx))); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	raw, err := openFixture(t, "oci:fx/v1", "").RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("v1-manifest.json", raw, 0o644); err != nil {
		t.Fatal(err)
	}
	one := func(name, dir, baseline, platform, intra string) []*plan.Plan {
		return []*plan.Plan{fixturePlan(t, name, "oci:fx/"+dir, baseline, platform, intra)}
	}
	bundle := func(all bool) []*plan.Plan {
		var out []*plan.Plan
		for _, s := range []string{"svc-a", "svc-b", "svc-c"} {
			b := ""
			if all || s == "svc-a" {
				b = "oci:fx/bundle/" + s + "-v1"
			}
			out = append(out, fixturePlan(t, s, "oci:fx/bundle/"+s+"-v2", b, "", plan.IntraAuto))
		}
		return out
	}
	cases := []struct {
		name  string
		plans []*plan.Plan
		o     pack.Options
		want  string
	}{
		{"single", one("v2", "v2", "oci:fx/v1", "", plan.IntraAuto), pack.Options{}, "1d24d22971812d4becbd1ed789f9282d47e0d4749b9cc17bbe1e1c00cca6a9e9"},
		{"single zstd", one("v2", "v2", "oci:fx/v1", "", plan.IntraAuto), pack.Options{Compress: pack.CompressZstd}, "d20ae0de5ca29395e961f94912f50584b06fedb9c678161f8303206b181dd72a"},
		{"intra-layer off", one("v2", "v2", "oci:fx/v1", "", plan.IntraOff), pack.Options{}, "3f95e4f50039ddc4d2e123cfc027c001e96bec6eaa0fd9af5735a488febe66dc"},
		{"no baseline", one("v2", "v2", "", "", plan.IntraAuto), pack.Options{}, "802710889ede99ec94b28c7af3c8f8f60e25f4c63c53ecf19ede7a343fe8eea9"},
		{"baseline manifest", one("v2", "v2", "manifest:v1-manifest.json", "", plan.IntraAuto), pack.Options{}, "2df273c89816fc7e69f5caa554e8a330b7ac34599e0f4bc711546a9ebf9e4f81"},
		{"zstd layers", one("z", "zstd-v2", "oci:fx/zstd-v1", "", plan.IntraAuto), pack.Options{}, "8184c0916e420a5b872f4e7ed15640ce69843f427af44ea3978c667ebc583751"},
		{"docker media types", one("d", "docker-v2", "oci:fx/docker-v1", "", plan.IntraAuto), pack.Options{}, "c68c7d0278a647301aff534b0d0e99be53323e90710529fa338c4cada3414c56"},
		{"multi-arch", one("m", "multi-v2", "oci:fx/multi-v1", "linux/arm64", plan.IntraAuto), pack.Options{}, "3c498cc2f739cb28025e87733761df18396ebbd6aae60bb88d618752870da010"},
		{"bundle", bundle(true), pack.Options{Compress: pack.CompressNone}, "7abff12eba8b24f581dc2be7858e219042de4c4f4826cd9a39e61d22caf0e298"},
		{"bundle independent", bundle(true), pack.Options{Independent: true, Compress: pack.CompressNone}, "7abff12eba8b24f581dc2be7858e219042de4c4f4826cd9a39e61d22caf0e298"},
		{"bundle with images new to the site", bundle(false), pack.Options{Compress: pack.CompressNone}, "b24cac52f4cf8e5eaa38d3e6f773a92975b410dabafbc86c3e0df73a8e3a8b2b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The archive is the same bytes whatever --jobs: every
			// encoder splits its work across workers deterministically.
			for _, jobs := range []int{1, 2, 4} {
				var out bytes.Buffer
				c.o.Jobs = jobs
				if _, err := pack.Write(context.Background(), &out, reread(t, c.plans...), c.o); err != nil {
					t.Fatalf("jobs %d: honest plan refused: %v", jobs, err)
				}
				sum := sha256.Sum256(out.Bytes())
				// The sums are those the code at 5dcf63e wrote, updated once
				// for sidecar 1.2 (the version and each blob's reasonCode).
				if got := hex.EncodeToString(sum[:]); got != c.want {
					t.Errorf("jobs %d: archive sha256 %s, the code before the check wrote %s", jobs, got, c.want)
				}
			}
		})
	}
}

// TestPackBaselineGone: pack opens the baseline a plan names to check it;
// a baseline that is not there is an environment error (exit 3) naming
// the plan field, and nothing is written.
func TestPackBaselineGone(t *testing.T) {
	mfile := v1Manifest(t)
	cases := []struct {
		name, field string
		p           *plan.Plan
		edit        func(p *plan.Plan)
	}{
		{"manifest file", ".baseline.manifestFile", fixturePlan(t, "v2", "oci:"+fx+"/v2", "manifest:"+mfile, "", plan.IntraAuto),
			func(p *plan.Plan) { p.Baseline.ManifestFile = filepath.Join(t.TempDir(), "gone.json") }},
		{"image", ".baseline.ref", fixturePlan(t, "v2", "oci:"+fx+"/v2", "oci:"+fx+"/v1", "", plan.IntraOff),
			func(p *plan.Plan) { p.Baseline.Ref = "oci:" + filepath.Join(t.TempDir(), "gone") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := reread(t, c.p)
			c.edit(ps[0])
			var out bytes.Buffer
			_, err := pack.Write(context.Background(), &out, ps, pack.Options{})
			if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), c.field) || out.Len() != 0 {
				t.Fatalf("got %v (kind %v, %d bytes written), want an environment error naming %s and nothing written", err, fault.KindOf(err, 0), out.Len(), c.field)
			}
		})
	}
}
