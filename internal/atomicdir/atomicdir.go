// Package atomicdir builds a directory beside its final place and moves it
// there in one step, so an interrupted or failed run leaves either the old
// state or the complete new one, never a mix.
package atomicdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/diffah/diffah/fault"
)

const tmpMarker = ".diffah-tmp-"

// Dir is a directory under construction.
type Dir struct {
	// Path is where the content is built.
	Path  string
	final string
	done  bool
}

// New starts building what will become final. Leftovers of earlier
// interrupted runs for the same final path are removed first.
func New(final string) (*Dir, error) {
	final = filepath.Clean(final)
	parent, base := filepath.Split(final)
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fault.Errorf(fault.Env, "creating %s: %w", parent, err)
	}
	CleanStale(final)
	tmp, err := os.MkdirTemp(parent, "."+base+tmpMarker)
	if err != nil {
		return nil, fault.Errorf(fault.Env, "creating a temporary directory beside %s: %w", final, err)
	}
	return &Dir{Path: tmp, final: final}, nil
}

// CleanStale removes temporary siblings that interrupted runs left for
// final.
func CleanStale(final string) {
	parent, base := filepath.Split(filepath.Clean(final))
	if parent == "" {
		parent = "."
	}
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "."+base+tmpMarker) {
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}

// Commit moves the built directory to its final path. If the final path
// exists and replace is true, the two are exchanged atomically (Linux
// renameat2 RENAME_EXCHANGE) and the old content removed; if replace is
// false an existing final path is an error.
func (d *Dir) Commit(replace bool) error {
	if err := syncTree(d.Path); err != nil {
		return fault.Errorf(fault.Env, "syncing %s: %w", d.Path, err)
	}
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
		// d.Path now holds the old content.
		os.RemoveAll(d.Path)
	}
	d.done = true
	syncDir(filepath.Dir(d.final))
	return nil
}

// Abort removes the unfinished directory; a no-op after Commit.
func (d *Dir) Abort() {
	if !d.done {
		os.RemoveAll(d.Path)
		d.done = true
	}
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
