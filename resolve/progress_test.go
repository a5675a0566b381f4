package resolve_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/diffah/diffah/internal/progress"
	"github.com/diffah/diffah/resolve"
)

// TestProgressInsideAPatch: the resolve bar moves while a patched layer
// is decoded and recompressed, not only when a blob is done: drawing at
// every step, it shows more distinct counts than there are blobs, never
// goes back, and ends at the image's full size.
func TestProgressInsideAPatch(t *testing.T) {
	old := progress.Interval
	progress.Interval = 0
	t.Cleanup(func() { progress.Interval = old })
	dir := unpacked(t, [3]string{"img", "v2", "v1"})
	var out bytes.Buffer
	rep, err := resolve.Complete(context.Background(), dir, map[string]resolve.Baseline{"": baseline(t, "v1")}, resolve.Options{Progress: &out, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	im := rep.Images[0]
	blobs := im.Shipped + im.Reused + im.Patched
	line := regexp.MustCompile(`^resolve  ([0-9.]+ (?:B|KiB|MiB)) / ([0-9.]+ (?:B|KiB|MiB)) \((\d+)%\)`)
	seen := map[string]bool{}
	last, total, pct := "", "", -1
	for _, l := range strings.Split(out.String(), "\r\033[K") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		p := 0
		for _, c := range m[3] {
			p = 10*p + int(c-'0')
		}
		if p < pct {
			t.Fatalf("the bar went back from %d%% to %d%%: %q", pct, p, l)
		}
		pct, last, total = p, m[1], m[2]
		seen[m[1]] = true
	}
	if len(seen) <= blobs {
		t.Errorf("%d distinct counts drawn for %d blobs (%d patched): the bar moves only when a blob is done\n%q", len(seen), blobs, im.Patched, out.String())
	}
	if last != total {
		t.Errorf("the bar ends at %s of %s", last, total)
	}
}
