package atomicdir

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffah/diffah/internal/cleanup"
)

func temps(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), Marker) {
			out = append(out, e.Name())
		}
	}
	return out
}

// A live run's temporary directory survives another run's sweep (the bug:
// a second import deleted the first's work as stale).
func TestLiveOwnerKept(t *testing.T) {
	final := filepath.Join(t.TempDir(), "out")
	a, err := New(final)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Abort()
	if err := os.WriteFile(filepath.Join(a.Path, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := New(final)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort()
	f, err := NewFile(final)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	Sweep(filepath.Dir(final))
	for _, p := range []string{filepath.Join(a.Path, "f"), b.Path, f.Name()} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("a live temporary output was swept: %v", err)
		}
	}
}

// TestHelperOwner is not a test: run as a child by TestDeadOwnerSwept, it
// makes a temporary directory and file and waits to be killed.
func TestHelperOwner(t *testing.T) {
	final := os.Getenv("DIFFAH_ATOMICDIR_HELPER")
	if final == "" {
		t.Skip("helper process only")
	}
	d, err := New(final)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.Path, "partial"), []byte("x"), 0o644)
	f, err := NewFile(final + ".tar")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	os.Stdout.WriteString("made\n")
	// (Not select{}: with nothing else to run, Go would call that a
	// deadlock and exit.)
	time.Sleep(time.Minute)
}

// What a killed run left is swept by the next one.
func TestDeadOwnerSwept(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "out")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOwner$")
	cmd.Env = append(os.Environ(), "DIFFAH_ATOMICDIR_HELPER="+final)
	var childErr strings.Builder
	cmd.Stderr = &childErr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(stdout, buf); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if got := temps(t, dir); len(got) != 2 {
		t.Fatalf("helper made %v", got)
	}
	Sweep(dir)
	if got := temps(t, dir); len(got) != 2 {
		t.Fatalf("a live owner's temporaries were swept: %v left\nhelper: %s", got, childErr.String())
	}
	cmd.Process.Kill()
	cmd.Wait()
	d, err := New(final)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	if got := temps(t, dir); len(got) != 1 || filepath.Join(dir, got[0]) != d.Path {
		t.Fatalf("after New: %v, want only %s", got, filepath.Base(d.Path))
	}
}

func TestCommitReplaceAndAbort(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "out")
	for i, want := range []string{"one", "two"} {
		d, err := New(final)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d.Path, "f"), []byte(want), 0o644)
		if err := d.Commit(i > 0); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(final, "f")); string(b) != want {
			t.Fatalf("after commit %d: %q", i, b)
		}
	}
	d, err := New(final)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(false); err == nil {
		t.Fatal("Commit(false) over an existing directory succeeded")
	}
	d.Abort()
	if got := temps(t, dir); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "f")
	if err := WriteFile(final, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(final); string(b) != "hello" {
		t.Fatalf("%q", b)
	}
	if err := WriteFile(final, io.MultiReader(strings.NewReader("bye"), errReader{})); err == nil {
		t.Fatal("a failed copy committed")
	}
	if b, _ := os.ReadFile(final); string(b) != "hello" {
		t.Fatalf("a failed write changed the file: %q", b)
	}
	if got := temps(t, dir); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// The abnormal-exit path (cleanup.Run) removes temporaries still under
// construction, and never what was committed.
func TestCleanupRun(t *testing.T) {
	dir := t.TempDir()
	done, err := New(filepath.Join(dir, "done"))
	if err != nil {
		t.Fatal(err)
	}
	if err := done.Commit(false); err != nil {
		t.Fatal(err)
	}
	open, err := New(filepath.Join(dir, "open"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFile(filepath.Join(dir, "file"))
	if err != nil {
		t.Fatal(err)
	}
	cleanup.Run()
	if got := temps(t, dir); len(got) != 0 {
		t.Fatalf("cleanup.Run left %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		t.Fatalf("cleanup.Run removed a committed directory: %v", err)
	}
	open.Abort()
	f.Abort()
}
