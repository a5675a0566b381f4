package fault

import "runtime/debug"

// Recover, deferred directly in a worker goroutine (or in the function a
// worker runs per task), turns a panic into an Internal error in *errp,
// so the goroutine returns an error like any other and the top level can
// clean up and exit 70. A recover in main cannot catch a panic in another
// goroutine: without this, such a panic kills the process, leaving
// temporary output behind.
func Recover(errp *error) {
	if r := recover(); r != nil {
		*errp = Panic(r, debug.Stack())
	}
}
