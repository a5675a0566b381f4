package progress

import (
	"bytes"
	"testing"
)

func TestPhase(t *testing.T) {
	var b bytes.Buffer
	p := NewPhase(&b)
	p.Set("plan: detecting the compressor of layer %d/%d", 3, 5)
	p.Done()
	if got, want := b.String(), "\r\033[Kplan: detecting the compressor of layer 3/5\r\033[K"; got != want {
		t.Fatalf("drew %q, want %q", got, want)
	}
	p.Done() // nothing more to clear
	if b.Len() != len("\r\033[Kplan: detecting the compressor of layer 3/5\r\033[K") {
		t.Error("Done cleared twice")
	}
	NewPhase(nil).Set("x") // silent, no panic
	var nilPhase *Phase
	nilPhase.Set("x")
	nilPhase.Done()
}
