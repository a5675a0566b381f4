package pack_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
)

// TestFloorAfterLargeLayer: above floorBesideMax, the floor comes after
// the tar patch and only when that patch is not tiny; the archive is the
// same as with the floor computed beside it.
func TestFloorAfterLargeLayer(t *testing.T) {
	gz := func(raw []byte) []byte {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		w.Write(raw)
		w.Close()
		return b.Bytes()
	}
	for _, tc := range []struct {
		name     string
		old, new map[string][]byte
		tiny     bool // the tar patch is at most 1/256 of the blob
	}{
		{"one edit", map[string][]byte{"bin/app": payload(1, 600<<10), "lib/data": payload(2, 300<<10)},
			map[string][]byte{"bin/app": append(payload(1, 300<<10), append([]byte("an edit"), payload(1, 600<<10)[300<<10:]...)...), "lib/data": payload(2, 300<<10)}, true},
		{"all new", map[string][]byte{"bin/app": payload(1, 200<<10)},
			map[string][]byte{"bin/app": payload(3, 200<<10), "lib/data": payload(4, 100<<10)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeImage(t, filepath.Join(dir, "v1"), layerFrom(t, gz(mkTar(tc.old)), types.OCILayer))
			writeImage(t, filepath.Join(dir, "v2"), layerFrom(t, gz(mkTar(tc.new)), types.OCILayer))
			ctx := context.Background()
			p, err := plan.Compute(ctx, plan.Input{Ref: "oci:" + dir + "/v2", Image: openOCI(t, filepath.Join(dir, "v2"))},
				&plan.BaselineInput{Ref: "oci:" + dir + "/v1", Image: openOCI(t, filepath.Join(dir, "v1"))}, plan.Options{Name: "img"})
			if err != nil {
				t.Fatal(err)
			}
			var archives [2][]byte
			var started [2]int32
			for i, max := range []int64{1 << 40, 0} { // beside, after
				floors, restore := pack.SetFloorBesideMax(max)
				var out bytes.Buffer
				_, err := pack.Write(ctx, &out, reread(t, p), pack.Options{Jobs: 2})
				restore()
				if err != nil {
					t.Fatal(err)
				}
				archives[i], started[i] = out.Bytes(), floors.Load()
			}
			if !bytes.Equal(archives[0], archives[1]) {
				t.Fatal("the archive depends on when the floor runs")
			}
			if started[0] != 1 {
				t.Fatalf("beside: %d floors started, want 1", started[0])
			}
			if want := map[bool]int32{true: 0, false: 1}[tc.tiny]; started[1] != want {
				t.Fatalf("after: %d floors started, want %d", started[1], want)
			}
		})
	}
}
