package pack_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

func fleetPlans(t *testing.T, services ...string) []*plan.Plan {
	var ps []*plan.Plan
	for _, s := range services {
		ps = append(ps, fixturePlan(t, s, "oci:"+fx+"/fleet/v2:"+s, "oci:"+fx+"/fleet/v1:"+s, "", plan.IntraAuto))
	}
	return reread(t, ps...)
}

// TestFleetTargetSources: in a bundle of services sharing one new binary,
// the first service's layer is patched against its baseline and the
// others' also against that layer (the first earlier new layer holding
// the binary), which makes their patches a few bytes; the choice and the
// bytes do not depend on the workers; --independent keeps every image to
// its own baseline.
func TestFleetTargetSources(t *testing.T) {
	ctx := context.Background()
	var first []byte
	var sc *sidecar.Sidecar
	sizes := map[string]int64{}
	for _, jobs := range []int{1, 3} {
		var out bytes.Buffer
		rep, err := pack.Write(ctx, &out, fleetPlans(t, "amber", "brisk", "calm"), pack.Options{Jobs: jobs, Compress: pack.CompressNone})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first, sc = out.Bytes(), rep.Sidecar
			for _, p := range rep.Patches {
				sizes[p.Image] = p.PatchSize
			}
		} else if !bytes.Equal(first, out.Bytes()) {
			t.Fatalf("jobs=%d packs other bytes than jobs=1", jobs)
		}
	}
	if sc.Version != "1.7" {
		t.Fatalf("version %s (diffah-tar-bundle/4: 1.7)", sc.Version)
	}
	amber := sc.Images[0].Blobs[3]
	if amber.Patch == nil || amber.Patch.Codec != tarpatch.Codec {
		t.Fatalf("amber's layer: %+v", amber.Patch)
	}
	for _, im := range sc.Images[1:] {
		b := im.Blobs[3]
		if b.Patch == nil || b.Patch.Codec != tarpatch.CodecBundle || len(b.Patch.Sources) != 2 {
			t.Fatalf("%s: %+v", im.Name, b.Patch)
		}
		own, tgt := b.Patch.Sources[0], b.Patch.Sources[1]
		if own.Target != "" || own.Image != "" || tgt.Target != "amber" || tgt.Digest != amber.Digest || tgt.DiffID != amber.DiffID {
			t.Fatalf("%s: sources %+v", im.Name, b.Patch.Sources)
		}
		if sizes[im.Name] > 200 || sizes[im.Name]*10 > sizes["amber"] {
			t.Fatalf("%s: %d-byte patch beside amber's %d", im.Name, sizes[im.Name], sizes["amber"])
		}
	}
	var out bytes.Buffer
	rep, err := pack.Write(ctx, &out, fleetPlans(t, "amber", "brisk", "calm"), pack.Options{Independent: true, Compress: pack.CompressNone})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range rep.Sidecar.Images {
		for _, b := range im.Blobs {
			if b.Patch != nil && b.Patch.Codec == tarpatch.CodecBundle {
				t.Fatalf("--independent: %s reads a target layer", im.Name)
			}
		}
	}
	// (Its version is 1.7 all the same: its patches are diffah-tar/4.)
	if int64(out.Len()) <= int64(len(first)) {
		t.Fatalf("--independent: version %s, %d bytes against %d", rep.Sidecar.Version, out.Len(), len(first))
	}
}

// TestFleetNewServiceShipsLess: a service new to the site (no baseline)
// whose layer holds what an earlier layer of the bundle holds is patched
// against it instead of shipping.
func TestFleetNewServiceShipsLess(t *testing.T) {
	ps := fleetPlans(t, "amber")
	p := fixturePlan(t, "brisk", "oci:"+fx+"/fleet/v2:brisk", "", "", plan.IntraAuto)
	ps = append(ps, reread(t, p)...)
	var out bytes.Buffer
	rep, err := pack.Write(context.Background(), &out, ps, pack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := rep.Sidecar.Images[1].Blobs[3]
	if b.Action != sidecar.Patch || b.Patch.Codec != tarpatch.CodecBundle || b.Patch.Sources[0].Target != "amber" {
		t.Fatalf("new service's app layer: %s %+v (%s)", b.Action, b.Patch, b.Reason)
	}
}

// TestAutoCompress: by default a bundle is zstd-compressed as a whole
// (its per-image records repeat: the fleet's sidecar entries, manifests,
// configs and tar headers), and its bytes decompress to exactly the
// --compress none archive, which is bigger; a single image's archive
// stays a plain tar.
func TestAutoCompress(t *testing.T) {
	ctx := context.Background()
	pack1 := func(o pack.Options, services ...string) []byte {
		t.Helper()
		var out bytes.Buffer
		if _, err := pack.Write(ctx, &out, fleetPlans(t, services...), o); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	fleet := []string{"amber", "brisk", "calm"}
	auto, plain := pack1(pack.Options{}, fleet...), pack1(pack.Options{Compress: pack.CompressNone}, fleet...)
	if !bytes.Equal(auto, pack1(pack.Options{Compress: pack.CompressZstd}, fleet...)) {
		t.Fatal("the default for a bundle is not --compress zstd")
	}
	zr, _ := zstd.NewReader(nil)
	defer zr.Close()
	if got, err := zr.DecodeAll(auto, nil); err != nil || !bytes.Equal(got, plain) {
		t.Fatal("the compressed bundle is not the plain one")
	}
	if len(auto) >= len(plain) {
		t.Fatalf("compressed bundle %d bytes, plain %d", len(auto), len(plain))
	}
	one := pack1(pack.Options{}, "amber")
	if !bytes.Equal(one, pack1(pack.Options{Compress: pack.CompressNone}, "amber")) {
		t.Fatal("a single image's archive is compressed by default")
	}
	if _, err := pack.Write(ctx, io.Discard, fleetPlans(t, "amber"), pack.Options{Compress: "xz"}); fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("--compress xz: %v", err)
	}
}
