package plan

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/sidecar"
)

// OnDetect is called once per layer whose compressor is detected, with
// a running count out of the total, and OnDetectRead with the bytes
// detection reads of the layers (from its goroutines): at least each
// patched layer's blob once, since its recipe was checked against all of
// it. Both are for the planning progress line.
func TestOnDetect(t *testing.T) {
	ctx := context.Background()
	open := func(dir string) *imgref.Image {
		img, err := imgref.Open(ctx, imgref.Ref{Transport: imgref.OCI, Path: "../testdata/images/" + dir}, imgref.Options{})
		if err != nil {
			t.Skipf("fixtures: %v (run make fixtures)", err)
		}
		return img
	}
	ti, bi := open("v2"), open("v1")
	var calls, last, total int
	var read atomic.Int64
	p, err := Compute(ctx, Input{Ref: "oci:v2", Image: ti}, &BaselineInput{Ref: "oci:v1", Image: bi},
		Options{Name: "v2", Jobs: 2, OnDetect: func(d, n int) { calls++; last, total = d, n }, OnDetectRead: func(n int64) { read.Add(n) }})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != total || calls != total || p.Totals.Patched > total {
		t.Fatalf("OnDetect: %d calls, last %d/%d; %d patched", calls, last, total, p.Totals.Patched)
	}
	var patched int64
	for _, b := range p.Blobs {
		if b.Action == sidecar.Patch {
			patched += b.Size
		}
	}
	if patched == 0 || read.Load() < patched {
		t.Fatalf("OnDetectRead counted %d bytes; the patched layers have %d", read.Load(), patched)
	}
}
