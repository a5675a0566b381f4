package atomicdir

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

type rangeCall struct {
	off   int64
	flags int
}

// recordRanges replaces the range call for one test, recording each call
// and failing those fail says to.
func recordRanges(t *testing.T, fail func(n int) bool) *[]rangeCall {
	t.Helper()
	var calls []rangeCall
	orig := syncRange
	syncRange = func(fd int, off, n int64, flags int) error {
		if n != writeBehindChunk {
			t.Errorf("range of %d bytes, want %d", n, writeBehindChunk)
		}
		calls = append(calls, rangeCall{off, flags})
		if fail != nil && fail(len(calls)) {
			return unix.EINVAL
		}
		return orig(fd, off, n, flags)
	}
	t.Cleanup(func() { syncRange = orig })
	return &calls
}

// TestWriteBehind writes 5.5 chunks in uneven pieces and then by
// ReadFrom: each complete chunk is started once, in order, and the chunk
// writeBehindLag back is waited for; the content is what was written.
func TestWriteBehind(t *testing.T) {
	calls := recordRanges(t, nil)
	data := make([]byte, 5*writeBehindChunk+writeBehindChunk/2)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	final := filepath.Join(t.TempDir(), "out")
	f, err := NewFile(final)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	rest := data[:3*writeBehindChunk+123]
	for len(rest) > 0 {
		n := min(len(rest), 1+r.IntN(3<<20))
		if _, err := f.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	// A plain reader: os.File's ReadFrom falls back to a copy.
	if _, err := f.ReadFrom(bytes.NewReader(data[3*writeBehindChunk+123:])); err != nil {
		t.Fatal(err)
	}
	const start = unix.SYNC_FILE_RANGE_WRITE
	const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	want := []rangeCall{{0, start}, {1 * writeBehindChunk, start}, {2 * writeBehindChunk, start}, {0, wait}, {3 * writeBehindChunk, start}, {1 * writeBehindChunk, wait}, {4 * writeBehindChunk, start}, {2 * writeBehindChunk, wait}}
	if !slices.Equal(*calls, want) {
		t.Errorf("range calls %v, want %v", *calls, want)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(final)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("committed content differs from what was written")
	}
}

// TestWriteBehindRefused: a file system that refuses the range call
// gets no more of them, and the file is still written and committed.
func TestWriteBehindRefused(t *testing.T) {
	calls := recordRanges(t, func(n int) bool { return n == 2 })
	final := filepath.Join(t.TempDir(), "out")
	f, err := NewFile(final)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	data := bytes.Repeat([]byte("diffah "), 4*writeBehindChunk/7+1)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if len(*calls) != 2 {
		t.Errorf("%d range calls, want 2 (the second refused, then none)", len(*calls))
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(final); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed content differs (%v)", err)
	}
}
