package resolve_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/resolve"
)

// TestFleetSpoolsOneSource: in the fleet bundle every service after the
// first is patched against the first one's rebuilt layer; resolve spools
// that one source once, keeps no other rebuilt layer around (one at a
// time), and every image comes out byte for byte (resolve verifies
// every blob and manifest digest).
func TestFleetSpoolsOneSource(t *testing.T) {
	ctx := context.Background()
	services := []string{"amber", "brisk", "calm"}
	fleet := filepath.Join(fixtures, "fleet")
	tagged := func(dir, tag string) (string, *imgref.Image) {
		img, err := imgref.Open(ctx, imgref.Ref{Transport: imgref.OCI, Path: dir, Tag: tag}, imgref.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { img.Close() })
		return "oci:" + dir + ":" + tag, img
	}
	var plans []*plan.Plan
	bases := map[string]resolve.Baseline{}
	for _, s := range services {
		tref, timg := tagged(filepath.Join(fleet, "v2"), s)
		bref, bimg := tagged(filepath.Join(fleet, "v1"), s)
		p, err := plan.Compute(ctx, plan.Input{Ref: tref, Image: timg}, &plan.BaselineInput{Ref: bref, Image: bimg}, plan.Options{Name: s})
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p)
		bases[s] = resolve.Baseline{Ref: bref, Image: bimg}
	}
	dir := packUnpacked(t, plans)
	var log bytes.Buffer
	rep, err := resolve.Complete(ctx, dir, bases, resolve.Options{Jobs: 3, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range rep.Images {
		if im.Status != resolve.StatusOK {
			t.Fatalf("%s: %s (%s)", im.Name, im.Status, im.Reason)
		}
	}
	if !strings.Contains(log.String(), `msg="target-layer sources spooled" sources=1 atOnce=1`) {
		t.Fatalf("log:\n%s", log.String())
	}
}
