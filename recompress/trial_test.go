package recompress

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
)

// countingOpener counts, per open, the bytes read.
type countingOpener struct {
	blob  []byte
	mu    sync.Mutex
	reads []*int64
}

type countReader struct {
	r  io.Reader
	mu *sync.Mutex
	n  *int64
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	*c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

func (o *countingOpener) open() (io.ReadCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := new(int64)
	o.reads = append(o.reads, n)
	return io.NopCloser(countReader{bytes.NewReader(o.blob), &o.mu, n}), nil
}

// TestTrialStopsOnDivergence: over a whole blob, the candidate that
// reproduces it survives, and a candidate whose output differs early stops
// there: it reads a small part of the blob, not all of it.
func TestTrialStopsOnDivergence(t *testing.T) {
	plain := data(16 << 20)
	right := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 9}
	wrong := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 1}
	blob := compress(t, right, plain)
	o := &countingOpener{blob: blob}
	got, err := trial(context.Background(), o.open, FormatGzip, []Recipe{wrong, right}, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].String() != right.String() {
		t.Fatalf("survivors %v, want only %s", got, right)
	}
	// Opens: the decompressed source, then one per candidate.
	if len(o.reads) != 3 {
		t.Fatalf("%d opens, want 3", len(o.reads))
	}
	if n := *o.reads[1]; n > 2<<20 || n >= int64(len(blob))/2 {
		t.Fatalf("the diverging candidate read %d of the blob's %d bytes", n, len(blob))
	}
	if n := *o.reads[2]; n != int64(len(blob)) {
		t.Fatalf("the matching candidate read %d of %d bytes", n, len(blob))
	}
}

// TestTrialSurvivorsInOrder: survivors come back in candidate order,
// whatever finishes first, on prefix and whole trials alike.
func TestTrialSurvivorsInOrder(t *testing.T) {
	plain := data(3 << 20)
	r6 := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}
	blob := compress(t, r6, plain)
	cands := Candidates(FormatGzip)
	for _, limit := range []int64{1 << 20, -1} {
		for range 3 {
			got, err := trial(context.Background(), opener(blob), FormatGzip, cands, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[0].String() != r6.String() {
				t.Fatalf("limit %d: survivors %v, want %s first", limit, got, r6)
			}
			for i := 1; i < len(got); i++ {
				if index(cands, got[i-1]) >= index(cands, got[i]) {
					t.Fatalf("limit %d: survivors %v out of candidate order", limit, got)
				}
			}
		}
	}
}

func index(rs []Recipe, r Recipe) int {
	for i, c := range rs {
		if c.String() == r.String() {
			return i
		}
	}
	return -1
}
