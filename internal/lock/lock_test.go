package lock

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffah/diffah/fault"
)

// A second holder of one output is refused at once, with an environment
// error that names the output; after the first releases, it gets it.
func TestSecondHolderRefused(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	a, err := Acquire(context.Background(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(context.Background(), out, Options{})
	if err == nil {
		t.Fatal("second Acquire succeeded while the first holds the lock")
	}
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "another diffah is writing "+out) {
		t.Fatalf("got %v (kind %v)", err, fault.KindOf(err, 0))
	}
	if !strings.Contains(err.Error(), "(pid ") {
		t.Errorf("no holder pid in %q", err)
	}
	a.Release()
	if _, err := os.Lstat(FileFor(out)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left after release: %v", err)
	}
	b, err := Acquire(context.Background(), out, Options{})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	b.Release()
}

// The same output spelled two ways is one lock.
func TestSpellings(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := AcquireAll(context.Background(), []string{"out", "", "./out/", filepath.Join(dir, "out")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 1 {
		t.Fatalf("%d locks for one output", len(s))
	}
	if _, err := Acquire(context.Background(), filepath.Join(dir, "out"), Options{}); err == nil {
		t.Fatal("a differently spelled path got the same lock")
	}
	s.Release()
}

// AcquireAll takes nothing when one target is held.
func TestAcquireAllAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	held, err := Acquire(context.Background(), filepath.Join(dir, "b"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if _, err := AcquireAll(context.Background(), []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}, Options{}); err == nil {
		t.Fatal("AcquireAll succeeded with b held")
	}
	a, err := Acquire(context.Background(), filepath.Join(dir, "a"), Options{})
	if err != nil {
		t.Fatalf("a stayed locked after a failed AcquireAll: %v", err)
	}
	a.Release()
}

// With Wait, a second holder waits and gets the lock once the first
// releases it; a cancelled wait returns the context's error.
func TestWait(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	a, err := Acquire(context.Background(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		b, err := Acquire(context.Background(), out, Options{Wait: true})
		if err == nil {
			b.Release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("waiting Acquire returned while the lock was held: %v", err)
	case <-time.After(3 * pollInterval):
	}
	a.Release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting Acquire never got the released lock")
	}

	a, err = Acquire(context.Background(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(2 * pollInterval); cancel() }()
	if _, err := Acquire(ctx, out, Options{Wait: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

// TestHelperHolder is not a test: run as a child process by
// TestDeadHolder, it takes the lock named in its environment and waits to
// be killed.
func TestHelperHolder(t *testing.T) {
	out := os.Getenv("DIFFAH_LOCK_HELPER")
	if out == "" {
		t.Skip("helper process only")
	}
	if _, err := Acquire(context.Background(), out, Options{}); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("held\n")
	time.Sleep(time.Minute)
}

// A lock whose holder was killed (SIGKILL: no cleanup of its own) is free:
// the kernel dropped it, and the next run takes it.
func TestDeadHolder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHolder$")
	cmd.Env = append(os.Environ(), "DIFFAH_LOCK_HELPER="+out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "held\n" {
		t.Fatalf("helper: %q %v", buf, err)
	}
	if _, err := Acquire(context.Background(), out, Options{}); err == nil {
		t.Fatal("got the lock while the helper holds it")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Lstat(FileFor(out)); err != nil {
		t.Fatalf("the killed holder's lock file should still be there: %v", err)
	}
	l, err := Acquire(context.Background(), out, Options{})
	if err != nil {
		t.Fatalf("lock of a killed holder: %v", err)
	}
	l.Release()
}

// Hold refuses a path another open file holds, and one that is gone.
func TestHold(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	f, ok, err := Hold(p)
	if err != nil || !ok {
		t.Fatalf("Hold: %v %v", ok, err)
	}
	if _, ok, _ := Hold(p); ok {
		t.Fatal("second Hold of a held path succeeded")
	}
	f.Close()
	g, ok, err := Hold(p)
	if err != nil || !ok {
		t.Fatalf("Hold after close: %v %v", ok, err)
	}
	g.Close()
	if _, ok, err := Hold(filepath.Join(dir, "gone")); ok || err != nil {
		t.Fatalf("Hold of a missing path: %v %v", ok, err)
	}
}

// Directories made only to hold the lock go with it when nothing was
// written there; those the run filled stay.
func TestMadeDirsRemoved(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(root, "a", "b", "out")
	l, err := Acquire(context.Background(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, err := os.Lstat(filepath.Join(root, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a/ left after a run that wrote nothing: %v", err)
	}
	l, err = Acquire(context.Background(), out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	l.Release()
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the output's parents were removed: %v", err)
	}
}

// Spellings through symlinks (a linked parent, a link to the output) are
// the same output.
func TestSymlinkSpellings(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	os.MkdirAll(filepath.Join(real, "out"), 0o755)
	os.Symlink(real, filepath.Join(root, "viaparent"))
	os.Symlink(filepath.Join(real, "out"), filepath.Join(root, "linkout"))
	l, err := Acquire(context.Background(), filepath.Join(real, "out"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for _, p := range []string{filepath.Join(root, "viaparent", "out"), filepath.Join(root, "linkout")} {
		if _, err := Acquire(context.Background(), p, Options{}); err == nil {
			t.Errorf("%s locked beside %s", p, l.path)
		}
	}
	s, err := AcquireAll(context.Background(), []string{filepath.Join(root, "x"), filepath.Join(root, "viaparent", "..", "x")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Release()
}
