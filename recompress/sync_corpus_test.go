package recompress

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

func TestSyncCorpusExperiment(t *testing.T) {
	p := os.Getenv("DIFFAH_SYNC_BLOB")
	if p == "" {
		t.Skip("DIFFAH_SYNC_BLOB not set")
	}
	open := func() (io.ReadCloser, error) { return os.Open(p) }
	syncDebug = func(round int, c []SyncPoint, ok, checked []bool) {
		n, bad := 0, 0
		for i := range ok {
			if checked[i] {
				n++
				if !ok[i] {
					bad++
					t.Logf("round %d: segment %d at %d failed", round, i, c[i].In)
				}
			}
		}
		t.Logf("round %d: %d checked, %d failed", round, n, bad)
	}
	syncMismatch = func(i int, fb, bits, ob int64) {
		t.Logf("segment %d: first bad byte %d of %d (output %d)", i, fb, bits, ob)
	}
	t0 := time.Now()
	r, err := FindSyncPoints(context.Background(), open, Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}, SyncOptions{Jobs: 2})
	t.Logf("%v: %d points, err %v %v", time.Since(t0), len(r.Sync), err, r.Sync)
}
