package atomicdir

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// TestScratch: a scratch file holds data but has no name in its directory;
// a directory it cannot be made in is an Env error naming what.
func TestScratch(t *testing.T) {
	dir := t.TempDir()
	f, err := Scratch(dir, "spooling layer x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4))
	if err != nil || string(b) != "data" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("scratch file left a name: %v", ents)
	}
	_, err = Scratch(dir+"/missing", "spooling layer y")
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "spooling layer y") {
		t.Fatalf("err = %v, want an Env error naming what", err)
	}
}
