package main

import (
	"io"

	"github.com/diffah/diffah/deliver"
	"github.com/diffah/diffah/internal/lock"
)

// LockFlags are taken by every command that writes a file or directory:
// the output is locked for the whole run (a .OUT.diffah-lock file beside
// it), and a second run on the same output refuses or waits.
type LockFlags struct {
	Wait bool `help:"When another diffah is writing the same output, wait for it to finish (default: refuse at once, exit 3)."`
}

// lock takes the output locks of paths (empty ones skipped) before
// anything is read or written.
func (l LockFlags) lock(g *Globals, paths ...string) (lock.Set, error) {
	var ps []string
	for _, p := range paths {
		if p != "" {
			ps = append(ps, p)
		}
	}
	return lock.AcquireAll(g.ctx, ps, lock.Options{Wait: l.Wait, Log: g.log})
}

// writeOutput runs write against FILE (locked, through a temporary file
// renamed at the end, so a failed run leaves no partial file) or stdout.
func writeOutput(g *Globals, lf LockFlags, path string, stdout io.Writer, what string, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		if err := refuseTerminal(stdout, what); err != nil {
			return err
		}
		return write(stdout)
	}
	locks, err := lf.lock(g, path)
	if err != nil {
		return err
	}
	defer locks.Release()
	return deliver.WriteFile(path, write)
}
