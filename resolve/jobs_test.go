package resolve_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/resolve"
)

// TestCompleteIndependentOfJobs: blobs are written on a pool, but a
// resolved bundle is the same files with the same bytes whatever the
// number of workers.
func TestCompleteIndependentOfJobs(t *testing.T) {
	imgs := [][3]string{{"svc-a", "bundle/svc-a-v2", "bundle/svc-a-v1"}, {"svc-b", "bundle/svc-b-v2", "bundle/svc-b-v1"}, {"svc-c", "bundle/svc-c-v2", "bundle/svc-c-v1"}}
	var first string
	for _, jobs := range []int{1, 3, 8} {
		dir := unpacked(t, imgs...)
		bases := map[string]resolve.Baseline{}
		for _, im := range imgs {
			bases[im[0]] = baseline(t, im[2])
		}
		if _, err := resolve.Complete(context.Background(), dir, bases, resolve.Options{Jobs: jobs}); err != nil {
			t.Fatalf("jobs=%d: %v", jobs, err)
		}
		got := contents(t, dir)
		if strings.Count(got, "\n") < 10 {
			t.Fatalf("only %d files resolved", strings.Count(got, "\n"))
		}
		if first == "" {
			first = got
		} else if got != first {
			t.Fatalf("jobs=%d resolves to other files than jobs=1:\n%s\nvs\n%s", jobs, got, first)
		}
	}
}

// contents lists every regular file under dir by relative path and sha256.
func contents(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %x\n", rel, sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
