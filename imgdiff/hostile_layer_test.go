package imgdiff

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/hostiletar"
)

func rawLayer(t *testing.T, b []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSparseBombCancels: a layer of a few KiB holding a 2^40-byte sparse
// file is hashed as it streams (nothing is allocated for it), and the
// comparison stops as soon as its context is cancelled instead of hashing
// a terabyte of zeros first.
func TestSparseBombCancels(t *testing.T) {
	bomb := image(t, nil, rawLayer(t, hostiletar.Sparse("big", 1<<40, []byte("x"))))
	plain := image(t, nil, layer(t, file("big", "small")))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Compare(ctx, plain, bomb, Options{})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Compare returned before cancellation (%v): it cannot have hashed 2^40 bytes", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Compare still running 10s after cancellation")
	}
}

// TestSparseReportKeepsHoles: a differing sparse file copied into the
// report directory keeps its holes: its full size, almost no disk.
func TestSparseReportKeepsHoles(t *testing.T) {
	const size = 256 << 20
	bomb := image(t, nil, rawLayer(t, hostiletar.Sparse("big", size, []byte("tail"))))
	plain := image(t, nil, layer(t, file("big", "small")))
	dir := filepath.Join(t.TempDir(), "r")
	if _, err := Compare(context.Background(), plain, bomb, Options{ReportDir: dir}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "input-1", "big")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Fatalf("report file is %d bytes, want %d", st.Size(), size)
	}
	if used := diskUsage(st); used > 1<<20 {
		t.Fatalf("report file uses %d bytes of disk for a %d-byte sparse file", used, size)
	}
	f, _ := os.Open(p)
	defer f.Close()
	tail := make([]byte, 4)
	f.ReadAt(tail, size-4)
	if string(tail) != "tail" {
		t.Fatalf("tail %q", tail)
	}
}

// TestIndexBudget: the metadata kept for entries is charged to one
// budget shared by every layer; passing it is an integrity error naming
// the layer, not unbounded growth.
func TestIndexBudget(t *testing.T) {
	var ents []ent
	for i := range 200 {
		ents = append(ents, file(strings.Repeat("n", 100)+strconv.Itoa(i), "x"))
	}
	b := &metaBudget{limit: 100 * (entryCost + 110)}
	_, err := readIndex(context.Background(), bytes.NewReader(tarBytes(t, ents...)), "layer 7", b)
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "layer 7") {
		t.Fatalf("want an integrity error naming the layer, got %v", err)
	}
	// Under the limit all is well, and the budget is shared: a second
	// layer's entries count against what the first left.
	b = &metaBudget{limit: 300 * (entryCost + 110)}
	if _, err := readIndex(context.Background(), bytes.NewReader(tarBytes(t, ents...)), "a", b); err != nil {
		t.Fatal(err)
	}
	if _, err := readIndex(context.Background(), bytes.NewReader(tarBytes(t, ents...)), "b", b); fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("second layer: want the shared budget exhausted, got %v", err)
	}
}
