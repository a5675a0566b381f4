package hostiletar

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
)

// TestSparseReadsAsClaimed: archive/tar expands the crafted entry to the
// claimed size, hole as zeros, data at the end.
func TestSparseReadsAsClaimed(t *testing.T) {
	const size = 3 << 20
	tr := tar.NewReader(bytes.NewReader(Sparse("big", size, []byte("end"))))
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "big" || h.Size != size {
		t.Fatalf("header %q size %d", h.Name, h.Size)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != size || !bytes.Equal(b[size-3:], []byte("end")) || bytes.Count(b[:size-3], []byte{0}) != size-3 {
		t.Fatalf("content: %d bytes, tail %q", len(b), b[len(b)-3:])
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("want one entry, got %v", err)
	}
}
