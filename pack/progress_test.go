package pack

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/diffah/diffah/internal/progress"
)

// TestLayerBar: a layer's bytes count into the encoding bar as they are
// read, never past the layer's size (a codec that reads the blob again),
// and done tops it up to the size, so the bar ends at its total.
func TestLayerBar(t *testing.T) {
	var out bytes.Buffer
	bar := progress.New(&out, "pack: encoding 2 changed layers", 300)
	a, b := &layerBar{bar: bar, size: 100}, &layerBar{bar: bar, size: 200}
	io.Copy(io.Discard, a.reader(strings.NewReader(strings.Repeat("x", 60))))
	io.Copy(io.Discard, a.reader(strings.NewReader(strings.Repeat("x", 100)))) // read again: capped
	if got := a.n.Load(); got != 100 {
		t.Fatalf("layer a counted %d bytes, want 100", got)
	}
	io.Copy(io.Discard, b.reader(strings.NewReader(strings.Repeat("x", 50))))
	if l := bar.Line(time.Now().Add(time.Second)); !strings.Contains(l, "150 B / 300 B (50%)") || !strings.Contains(l, "ETA") {
		t.Fatalf("midway: %q", l)
	}
	b.done()
	a.done()
	if l := bar.Line(time.Now().Add(time.Second)); !strings.Contains(l, "300 B / 300 B (100%)") {
		t.Fatalf("at the end: %q", l)
	}
	var none *layerBar
	if r := strings.NewReader("x"); none.reader(r) != r {
		t.Fatal("a nil layerBar wraps the reader")
	}
	none.done()
}
