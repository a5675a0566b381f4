// Package atomicdir builds a directory or file beside its final place and
// moves it there in one step, so an interrupted or failed run leaves either
// the old state or the complete new one, never a mix.
//
// It is the one home of diffah's temporary outputs: every one is named
// .BASE.diffah-tmp-RANDOM beside its final path BASE, is locked by its
// owner while it exists (internal/lock) and registered for removal on an
// abnormal exit (internal/cleanup). Sweep removes only those whose owner
// is gone, so a second run never deletes a live run's work.
package atomicdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/cleanup"
	"github.com/diffah/diffah/internal/lock"
)

// Marker is in the name of every temporary output diffah creates.
const Marker = ".diffah-tmp-"

// attempts bounds retries when a sweeper removes a temporary path between
// its creation and its lock.
const attempts = 10

// Dir is a directory under construction.
type Dir struct {
	// Path is where the content is built.
	Path  string
	final string
	held  *os.File
	entry *cleanup.Entry
	done  bool
}

func split(final string) (parent, prefix string) {
	final = filepath.Clean(final)
	parent, base := filepath.Split(final)
	if parent == "" {
		parent = "."
	}
	return parent, "." + base + Marker
}

// New starts building what will become final. Leftovers of killed runs
// beside final are removed first. A Dir that is never committed (Abort
// only) is a private work directory beside final.
func New(final string) (*Dir, error) {
	final = filepath.Clean(final)
	tmp, held, err := create(final, "directory", func(parent, prefix string) (string, *os.File, error) {
		tmp, err := os.MkdirTemp(parent, prefix)
		if err != nil {
			return "", nil, err
		}
		f, ok, err := lock.Hold(tmp)
		if err != nil {
			os.RemoveAll(tmp)
		}
		if !ok {
			return "", nil, err
		}
		if err := f.Chmod(0o755); err != nil {
			f.Close()
			os.RemoveAll(tmp)
			return "", nil, err
		}
		return tmp, f, nil
	})
	if err != nil {
		return nil, err
	}
	// The registry keeps held reachable: were it collected, its finalizer
	// would close it and drop the lock that keeps sweepers away.
	return &Dir{Path: tmp, final: final, held: held, entry: cleanup.Add(func() { os.RemoveAll(tmp); held.Close() })}, nil
}

// create makes a temporary sibling of final with mk, which returns it
// open and locked (or "", nil, nil when a sweeper removed or locked it
// first: then another is made).
func create(final, what string, mk func(parent, prefix string) (string, *os.File, error)) (string, *os.File, error) {
	parent, prefix := split(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", nil, fault.Errorf(fault.Env, "creating %s: %w", parent, err)
	}
	Sweep(parent)
	for range attempts {
		p, f, err := mk(parent, prefix)
		if err != nil {
			return "", nil, fault.Errorf(fault.Env, "creating a temporary %s beside %s: %w", what, final, err)
		}
		if f != nil {
			return p, f, nil
		}
	}
	return "", nil, fault.Errorf(fault.Env, "creating a temporary %s beside %s: removed %d times by another process as it was made", what, final, attempts)
}

// Sweep removes, in dir, the temporary outputs whose owner is gone: those
// whose lock it can take. Those of live runs are left alone.
func Sweep(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") || !strings.Contains(e.Name(), Marker) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			os.Remove(p)
			continue
		}
		f, ok, err := lock.Hold(p)
		if err != nil || !ok {
			continue
		}
		os.RemoveAll(p)
		f.Close()
	}
}

// Commit moves the built directory to its final path. If the final path
// exists and replace is true, the two are exchanged atomically (Linux
// renameat2 RENAME_EXCHANGE) and the old content removed; if replace is
// false an existing final path is an error.
func (d *Dir) Commit(replace bool) error {
	if d.done {
		return fault.Errorf(fault.Internal, "committing %s twice", d.final)
	}
	if err := syncTree(d.Path); err != nil {
		return fault.Errorf(fault.Env, "syncing %s: %w", d.Path, err)
	}
	exchanged := false
	err := d.entry.Commit(func() error {
		_, err := os.Lstat(d.final)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Rename(d.Path, d.final); err != nil {
				return fault.Errorf(fault.Env, "moving the result into %s: %w", d.final, err)
			}
		case err != nil:
			return fault.Errorf(fault.Env, "checking %s: %w", d.final, err)
		case !replace:
			return fault.Errorf(fault.Usage, "%s already exists; remove it or choose another output", d.final)
		default:
			if err := unix.Renameat2(unix.AT_FDCWD, d.Path, unix.AT_FDCWD, d.final, unix.RENAME_EXCHANGE); err != nil {
				return fault.Errorf(fault.Env, "replacing %s: %w", d.final, err)
			}
			exchanged = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.done = true
	if exchanged {
		// d.Path now holds the old content: garbage, and unlocked, so a
		// later Sweep removes it if this run dies first.
		os.RemoveAll(d.Path)
	}
	d.held.Close()
	syncDir(filepath.Dir(d.final))
	return nil
}

// Abort removes the unfinished directory; a no-op after Commit.
func (d *Dir) Abort() {
	if d.done {
		return
	}
	os.RemoveAll(d.Path)
	d.entry.Drop()
	d.held.Close()
	d.done = true
}

// File is a file under construction beside its final path.
type File struct {
	*os.File
	final string
	entry *cleanup.Entry
	done  bool
	// written is how many bytes Write and ReadFrom wrote, started how
	// many of them the write-behind was started for (writebehind.go);
	// noBehind: the file system refused it.
	written, started int64
	noBehind         bool
}

// NewFile starts writing what will become the file final (sweeping dead
// temporary siblings first).
func NewFile(final string) (*File, error) {
	final = filepath.Clean(final)
	name, f, err := create(final, "file", func(parent, prefix string) (string, *os.File, error) {
		f, err := os.CreateTemp(parent, prefix+"*")
		if err != nil {
			return "", nil, err
		}
		ok, err := lock.Try(f)
		if err != nil || !ok || !lock.Same(f, f.Name()) {
			f.Close()
			if err != nil {
				os.Remove(f.Name())
			}
			return "", nil, err
		}
		return f.Name(), f, nil
	})
	if err != nil {
		return nil, err
	}
	// As in New, the registry keeps the locked file reachable.
	return &File{File: f, final: final, entry: cleanup.Add(func() { os.Remove(name); f.Close() })}, nil
}

// Commit syncs the file, makes it mode 0644 and renames it to its final
// path, replacing what was there.
func (f *File) Commit() error {
	if f.done {
		return fault.Errorf(fault.Internal, "committing %s twice", f.final)
	}
	if err := f.Sync(); err != nil {
		return fault.Errorf(fault.Env, "syncing %s: %w", f.final, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fault.Errorf(fault.Env, "chmod %s: %w", f.final, err)
	}
	err := f.entry.Commit(func() error {
		if err := os.Rename(f.Name(), f.final); err != nil {
			return fault.Errorf(fault.Env, "renaming into %s: %w", f.final, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.done = true
	cerr := f.Close()
	syncDir(filepath.Dir(f.final))
	if cerr != nil {
		return fault.Errorf(fault.Env, "closing %s: %w", f.final, cerr)
	}
	return nil
}

// Abort removes the unfinished file; a no-op after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.Close()
	os.Remove(f.Name())
	f.entry.Drop()
	f.done = true
}

// WriteFile writes r to final through a temporary sibling, synced before
// the rename, so final is either old or complete. Errors carrying a kind
// (a verifying reader's integrity error, say) or a cancellation keep it;
// other copy errors are the disk's (environment).
func WriteFile(final string, r io.Reader) error {
	f, err := NewFile(final)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f, r); err != nil {
		if fault.KindOf(err, 0) != 0 || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("writing %s: %w", final, err)
		}
		return fault.Errorf(fault.Env, "writing %s: %w", final, err)
	}
	return f.Commit()
}

func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type()&os.ModeSymlink != 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
}

func syncDir(p string) {
	if f, err := os.Open(p); err == nil {
		f.Sync()
		f.Close()
	}
}
