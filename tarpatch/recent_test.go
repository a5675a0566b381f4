package tarpatch

import (
	"runtime"
	"testing"
	"weak"
)

// A file trimmed from the recent files is no longer reachable from them:
// the encoder's memory stays at HistSize/2 of them, not twice that.
func TestRecentFilesReleaseTrimmed(t *testing.T) {
	r := &recentFiles{}
	first := make([]byte, 1<<20)
	w := weak.Make(&first[0])
	r.add(".so", 0, first)
	first = nil
	abs := int64(1 << 20)
	for abs <= HistSize/2 { // until the first file is trimmed
		r.add(".so", abs, make([]byte, 1<<20))
		abs += 1 << 20
	}
	if r.total > HistSize/2 {
		t.Fatalf("recent files hold %d bytes, budget %d", r.total, HistSize/2)
	}
	runtime.GC()
	runtime.GC()
	if w.Value() != nil {
		t.Fatal("a trimmed recent file is still reachable")
	}
	runtime.KeepAlive(r)
}
