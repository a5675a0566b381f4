// Package lock keeps two diffah runs from writing one output at once, and
// tells a live temporary output from one a killed run left behind.
//
// Both rest on flock(2), which the kernel releases when its holder dies,
// however it dies:
//   - an output OUT is locked through the file .OUT.diffah-lock beside it,
//     held for the whole run that writes OUT (Acquire);
//   - a temporary file or directory is locked by its owner (Hold) while it
//     exists, so a sweeper removes only those it can lock itself (Try).
package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/cleanup"
)

// Suffix ends the name of an output's lock file: .OUT.diffah-lock.
const Suffix = ".diffah-lock"

// pollInterval is how often a waiting run retries a held lock.
const pollInterval = 100 * time.Millisecond

// Options say what to do when another run holds the lock.
type Options struct {
	// Wait: wait for the other run to finish instead of refusing.
	Wait bool
	// Log, when set, gets one line when a run starts waiting.
	Log *slog.Logger
}

// Lock is a held output lock.
type Lock struct {
	target, path string
	f            *os.File
	entry        *cleanup.Entry
	// made are the directories Acquire created (outermost first).
	made []string
}

// canonical resolves symlinks in abs (an absolute path whose parent
// exists), so that two spellings of one output share one lock.
func canonical(abs string) string {
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	if parent, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(parent, filepath.Base(abs))
	}
	return abs
}

// mkdirs creates dir and its missing parents, and says which it made.
func mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		missing = append([]string{d}, missing...)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return missing, nil
}

// FileFor is the lock file of target.
func FileFor(target string) string {
	target = filepath.Clean(target)
	return filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+Suffix)
}

// Try takes the exclusive flock on f without waiting; false means another
// open file (in this process or another) holds it.
func Try(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		}
		return false, err
	}
}

// Same reports whether path still names the file f has open: a lock taken
// on a file that was removed (or replaced) meanwhile protects nothing.
func Same(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	return err == nil && os.SameFile(a, b)
}

// Hold opens path (a temporary file or directory just created by this
// process) and takes its lock, so that sweepers leave it alone. false
// means a sweeper got there first (path was removed or is locked): create
// another one.
func Hold(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	ok, err := Try(f)
	if err != nil || !ok || !Same(f, path) {
		f.Close()
		return nil, false, err
	}
	return f, true, nil
}

// Acquire locks target for writing. When another run holds it, it refuses
// at once with an environment error naming target, or with o.Wait waits
// (until ctx is done).
func Acquire(ctx context.Context, target string, o Options) (*Lock, error) {
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, fault.Errorf(fault.Env, "locking %s: %w", target, err)
	}
	made, err := mkdirs(filepath.Dir(abs))
	if err != nil {
		return nil, fault.Errorf(fault.Env, "locking %s: %w", target, err)
	}
	path := FileFor(canonical(abs))
	// A run that fails leaves no directories it made only to lock in.
	removeMade := func() {
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i])
		}
	}
	waiting := false
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
		if err != nil {
			removeMade()
			return nil, fault.WithHint(fault.Errorf(fault.Env, "locking %s: %w", target, err), fault.Env,
				"diffah keeps a lock file "+filepath.Base(path)+" beside each output while it writes; check the directory is writable")
		}
		ok, err := Try(f)
		if err != nil {
			f.Close()
			removeMade()
			return nil, fault.Errorf(fault.Env, "locking %s: %w", target, err)
		}
		if ok && Same(f, path) {
			// For people looking at the file: who holds it.
			f.Truncate(0)
			f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
			l := &Lock{target: target, path: path, f: f, made: made}
			// On an abnormal exit the kernel drops the flock; the file
			// itself is litter worth removing.
			// (The registry also keeps f reachable, so no finalizer
			// closes it while the lock is meant to be held.)
			l.entry = cleanup.Add(func() { os.Remove(path); f.Close() })
			return l, nil
		}
		f.Close()
		if ok {
			// The holder removed the file as we opened it: try again on
			// the new one.
			continue
		}
		if !o.Wait {
			removeMade()
			msg := fmt.Sprintf("another diffah is writing %s", target)
			if pid := holder(path); pid != "" {
				msg += " (pid " + pid + ")"
			}
			return nil, fault.WithHint(fault.Errorf(fault.Env, "%s", msg), fault.Env,
				"wait for it to finish, or pass --wait to wait for it")
		}
		if !waiting && o.Log != nil {
			o.Log.Warn("waiting for another diffah writing the same output", "output", target, "lock", path)
		}
		waiting = true
		t := time.NewTimer(pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			removeMade()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(s); err != nil {
		return ""
	}
	return s
}

// Release drops the lock and removes its file (while still holding it, so
// that no other run can be holding a lock on the removed file: a run that
// opened it meanwhile sees it is gone and opens the new one).
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	l.entry.Drop()
	if Same(l.f, l.path) {
		os.Remove(l.path)
	}
	l.f.Close()
	l.f = nil
	// Empty only when the run wrote nothing there (os.Remove keeps a
	// directory that is not empty).
	for i := len(l.made) - 1; i >= 0; i-- {
		os.Remove(l.made[i])
	}
}

// Set is the locks of one command's outputs.
type Set []*Lock

// AcquireAll locks every target (duplicates, however spelled, once;
// empty ones skipped), in a fixed order so that two waiting runs cannot
// deadlock. On failure nothing stays locked.
func AcquireAll(ctx context.Context, targets []string, o Options) (Set, error) {
	seen := map[string]string{}
	var keys []string
	for _, t := range targets {
		if t == "" {
			continue
		}
		abs, err := filepath.Abs(t)
		if err != nil {
			return nil, fault.Errorf(fault.Env, "locking %s: %w", t, err)
		}
		abs = canonical(abs)
		if _, ok := seen[abs]; !ok {
			seen[abs] = t
			keys = append(keys, abs)
		}
	}
	sort.Strings(keys)
	var s Set
	for _, k := range keys {
		l, err := Acquire(ctx, seen[k], o)
		if err != nil {
			s.Release()
			return nil, err
		}
		s = append(s, l)
	}
	return s, nil
}

// Release drops every lock of s.
func (s Set) Release() {
	for i := len(s) - 1; i >= 0; i-- {
		s[i].Release()
	}
}
