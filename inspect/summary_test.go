package inspect

import (
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
