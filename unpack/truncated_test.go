package unpack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// TestEveryCutRefused cuts the archive at many lengths, including inside
// the last entry's padding and the end-of-archive marker, where
// archive/tar itself reports a clean end: each cut is refused as an
// integrity error with a hint, and nothing is left behind.
func TestEveryCutRefused(t *testing.T) {
	a := archive(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	// A stride, and every block boundary and its neighbours (where a cut
	// stops archive/tar cleanly); each cut that reaches the disk syncs.
	for n := 0; n < len(a); n++ {
		if r := n % 512; n%29 != 0 && r != 0 && r != 1 && r != 511 {
			continue
		}
		_, err := Read(context.Background(), bytes.NewReader(a[:n]), dir, Options{})
		if err == nil {
			t.Fatalf("cut at %d of %d accepted", n, len(a))
		}
		if k := fault.KindOf(err, 0); k != fault.Integrity {
			t.Fatalf("cut at %d: kind %v: %v", n, k, err)
		}
		if fault.HintOf(err) == "" {
			t.Fatalf("cut at %d: no hint: %v", n, err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 0 {
			t.Fatalf("cut at %d: left %s", n, ents[0].Name())
		}
	}
	_, err := Read(context.Background(), bytes.NewReader(a[:len(a)-1024]), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "end-of-archive marker") {
		t.Fatalf("archive without its end marker: %v", err)
	}
	if _, err := Read(context.Background(), bytes.NewReader(a), dir, Options{}); err != nil {
		t.Fatalf("the whole archive: %v", err)
	}
}
