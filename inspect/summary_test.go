package inspect

import (
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/diffah/diffah/sidecar"
)

func TestSummary(t *testing.T) {
	s := bundle()
	line := Summary("app.dlt", s, 1<<20)
	re := regexp.MustCompile(`^wrote app\.dlt: 1\.0 MiB \(\d+% of [0-9.]+ [KMG]iB saved\): \d+ layers? patched, \d+ reused, \d+ shipped whole$`)
	if !re.MatchString(line) {
		t.Fatalf("summary %q", line)
	}
	var whole int
	for _, im := range s.Images {
		for _, b := range im.Blobs {
			if b.Role == sidecar.RoleLayer && b.Action == sidecar.Ship {
				whole++
			}
		}
	}
	if !strings.Contains(line, ", "+strconv.Itoa(whole)+" shipped whole") {
		t.Errorf("summary %q does not count %d whole layers", line, whole)
	}
}

// TestWarnWhole: one warning per changed layer that ships whole in an
// image with a baseline, naming the image and the layer.
func TestWarnWhole(t *testing.T) {
	s := bundle()
	var b strings.Builder
	WarnWhole(slog.New(slog.NewTextHandler(&b, nil)), s)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "image=svc-a") || !strings.Contains(lines[1], "image=svc-b") || !strings.Contains(lines[0], "layer="+dg("base").String()) {
		t.Fatalf("warnings:\n%s", b.String())
	}
	s.Images[0].Baseline, s.Images[1].Baseline = nil, nil
	b.Reset()
	WarnWhole(slog.New(slog.NewTextHandler(&b, nil)), s)
	if b.Len() != 0 {
		t.Fatalf("warnings without a baseline:\n%s", b.String())
	}
}
