// Package cleanup is the process-wide registry of what an abnormal exit
// must undo: temporary outputs to remove and lock files to drop. The
// ordinary path undoes its own work with defers; a signal whose read never
// returns, or a panic caught at the top of the command, runs the registry
// instead, so both leave nothing behind.
package cleanup

import (
	"sort"
	"sync"
)

var (
	mu      sync.Mutex
	nextID  int
	entries = map[int]func(){}
)

// Entry is one registered undo action.
type Entry struct{ id int }

// Add registers fn to be run by Run.
func Add(fn func()) *Entry {
	mu.Lock()
	defer mu.Unlock()
	nextID++
	entries[nextID] = fn
	return &Entry{id: nextID}
}

// Drop unregisters e without running it: its work was undone, or
// committed.
func (e *Entry) Drop() {
	if e == nil {
		return
	}
	mu.Lock()
	delete(entries, e.id)
	mu.Unlock()
}

// Commit runs fn (a rename that makes a temporary output final) while Run
// cannot, and drops e when fn succeeds: an interruption either sees the
// temporary path (and removes it) or the committed output (and leaves it),
// never removes what was just committed.
func (e *Entry) Commit(fn func() error) error {
	mu.Lock()
	defer mu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	if e != nil {
		delete(entries, e.id)
	}
	return nil
}

// Run runs every registered action, newest first, and clears the
// registry. It is for the abnormal exits only: the process exits (signal)
// or returns an internal error (panic) right after.
func Run() {
	mu.Lock()
	defer mu.Unlock()
	ids := make([]int, 0, len(entries))
	for id := range entries {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	for _, id := range ids {
		fn := entries[id]
		delete(entries, id)
		fn()
	}
}

// Len reports how many actions are registered (for tests).
func Len() int {
	mu.Lock()
	defer mu.Unlock()
	return len(entries)
}
