package plan

import (
	"bytes"
	"context"
	"testing"
)

// TestComputeIndependentOfJobs: recipe detection runs on a pool, but the
// plan is the same bytes whatever the number of workers.
func TestComputeIndependentOfJobs(t *testing.T) {
	ctx := context.Background()
	ti, bi := fixtureImages(t)
	var first []byte
	for _, jobs := range []int{1, 2, 7} {
		p, err := Compute(ctx, Input{Ref: "oci:v2", Platform: ti.Platform, Image: ti}, &BaselineInput{Ref: "oci:v1", Image: bi},
			Options{Name: "v2", IntraLayer: IntraAuto, Jobs: jobs})
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if p.Totals.Patched == 0 {
			t.Fatal("the fixture plan patches nothing: the pool was not exercised")
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("jobs=%d gives another plan than jobs=1", jobs)
		}
	}
}
