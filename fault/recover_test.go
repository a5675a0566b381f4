package fault

import (
	"strings"
	"testing"
)

// TestRecoverInWorker: a panic in a goroutine becomes an Internal error
// its caller receives, instead of killing the process.
func TestRecoverInWorker(t *testing.T) {
	errc := make(chan error)
	go func() {
		var err error
		defer func() { errc <- err }()
		defer Recover(&err)
		var m map[string]int
		m["x"] = 1 // nil map write
	}()
	err := <-errc
	if KindOf(err, 0) != Internal || !strings.Contains(err.Error(), "internal error: assignment to entry in nil map") || HintOf(err) == "" {
		t.Fatalf("err = %v (kind %v, hint %q)", err, KindOf(err, 0), HintOf(err))
	}
	// No panic: the error is left alone.
	func() {
		err := Errorf(Env, "kept")
		defer Recover(&err)
		if KindOf(err, 0) != Env {
			t.Fatal("changed")
		}
	}()
}
