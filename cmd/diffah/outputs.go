package main

import (
	"fmt"
	"io"

	"github.com/diffah/diffah/deliver"
	"github.com/diffah/diffah/inspect"
	"github.com/diffah/diffah/internal/lock"
	"github.com/diffah/diffah/pack"
)

// LockFlags are taken by every command that writes a file or directory:
// the output is locked for the whole run (a .OUT.diffah-lock file beside
// it), and a second run on the same output refuses or waits.
type LockFlags struct {
	Wait bool `help:"When another diffah is writing the same output, wait for it to finish (default: refuse at once, exit 3)."`
}

// ForceFlags are taken by every command whose output is replaced whole.
type ForceFlags struct {
	Force bool `help:"Replace an existing output, atomically (default: refuse, exit 2, before any work)."`
}

// lock takes the output locks of paths (empty ones skipped) before
// anything is read or written.
func (l LockFlags) lock(g *Globals, paths ...string) (lock.Set, error) {
	return lock.AcquireAll(g.ctx, paths, lock.Options{Wait: l.Wait, Log: g.log})
}

// claim takes the lock of the output file path and refuses it when it
// exists, unless --force (deliver.ClaimFile).
func (l LockFlags) claim(g *Globals, f ForceFlags, flag, path string) (release func(), err error) {
	return deliver.ClaimFile(g.ctx, flag, path, f.Force, lock.Options{Wait: l.Wait, Log: g.log})
}

// writeOutput runs write against FILE (claimed first, written through a
// temporary file renamed at the end, so a failed run leaves no partial
// file) or stdout.
func writeOutput(g *Globals, lf LockFlags, f ForceFlags, flag, path string, stdout io.Writer, what string, write func(io.Writer) error) error {
	release, err := lf.claim(g, f, flag, path)
	if err != nil {
		return err
	}
	defer release()
	if path == "" || path == "-" {
		if err := refuseTerminal(stdout, what); err != nil {
			return err
		}
		return write(stdout)
	}
	return deliver.WriteFile(path, write)
}

// say prints a line for people: on a terminal (unless --quiet), else as
// an info log (seen with --log-level info).
func (g *Globals) say(s stdio, msg string) {
	if g.progressTo(s.err) != nil {
		fmt.Fprintln(s.err, msg)
		return
	}
	g.log.Info(msg)
}

// summarize ends export and pack: a warning for each changed layer that
// still ships whole (with why), and, once the archive is written, one
// summary line.
func (g *Globals) summarize(s stdio, out string, rep *pack.Report, err error) {
	if rep == nil || rep.Sidecar == nil {
		return
	}
	inspect.WarnWhole(g.log, rep.Sidecar)
	if err != nil {
		return
	}
	if out == "" || out == "-" {
		out = "stdout"
	}
	g.say(s, inspect.Summary(out, rep.Sidecar, rep.Bytes))
}
