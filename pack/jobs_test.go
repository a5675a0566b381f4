package pack_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
)

// TestWriteIndependentOfJobs: patches are computed on a pool, but a bundle
// (several patched layers) packs to the same bytes and the same report
// whatever the number of workers.
func TestWriteIndependentOfJobs(t *testing.T) {
	var bundle []*plan.Plan
	for _, s := range []string{"svc-a", "svc-b", "svc-c"} {
		bundle = append(bundle, fixturePlan(t, s, "oci:"+fx+"/bundle/"+s+"-v2", "oci:"+fx+"/bundle/"+s+"-v1", "", plan.IntraAuto))
	}
	var first []byte
	var firstPatches int
	for _, jobs := range []int{1, 3, 8} {
		var out bytes.Buffer
		rep, err := pack.Write(context.Background(), &out, reread(t, bundle...), pack.Options{Jobs: jobs})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Patches) < 2 {
			t.Fatalf("%d patches: the pool was not exercised", len(rep.Patches))
		}
		if first == nil {
			first, firstPatches = out.Bytes(), len(rep.Patches)
		} else if !bytes.Equal(out.Bytes(), first) || len(rep.Patches) != firstPatches {
			t.Fatalf("jobs=%d packs other bytes than jobs=1", jobs)
		}
	}
}
