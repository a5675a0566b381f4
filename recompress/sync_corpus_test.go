package recompress

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// TestSyncPointsOnBlob reports how FindSyncPoints fares on a real blob:
// each round's segments and which did not reproduce (where their first
// wrong byte is), and the points kept. How the cuts were chosen was
// measured with it (see sync.go). Behind an environment variable:
//
//	DIFFAH_SYNC_BLOB=path/to/layer.gz [DIFFAH_SYNC_RECIPE='{"format":"gzip","impl":"go","level":6}'] go test -run TestSyncPointsOnBlob -v ./recompress/
func TestSyncPointsOnBlob(t *testing.T) {
	p := os.Getenv("DIFFAH_SYNC_BLOB")
	if p == "" {
		t.Skip("DIFFAH_SYNC_BLOB not set")
	}
	rec := os.Getenv("DIFFAH_SYNC_RECIPE")
	if rec == "" {
		rec = `{"format":"gzip","impl":"go","level":6}`
	}
	r, err := ParseRecipe([]byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	open := func() (io.ReadCloser, error) { return os.Open(p) }
	syncDebug = func(round int, c []SyncPoint, ok, checked []bool) {
		n, bad := 0, 0
		for i := range ok {
			if checked[i] {
				n++
				if !ok[i] {
					bad++
				}
			}
		}
		t.Logf("round %d: %d segments checked, %d did not reproduce", round, n, bad)
	}
	syncMismatch = func(i int, firstBad, want, out int64) {
		t.Logf("segment %d: first wrong byte %d of %d (output %d)", i, firstBad, want, out)
	}
	defer func() { syncDebug, syncMismatch = nil, nil }()
	t0 := time.Now()
	rs, err := FindSyncPoints(context.Background(), open, r, SyncOptions{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d sync points in %v", len(rs.Sync), time.Since(t0))
}
