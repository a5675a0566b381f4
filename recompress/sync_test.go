package recompress

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
)

// mixedContent is content like a layer's: text-like runs, zero padding
// and incompressible stretches (compressed files), deterministic.
func mixedContent(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"usr", "share", "doc", "lib", "x86_64-linux-gnu", "copyright", "changelog", "Debian", "package", "\n", " ", "/"}
	var b bytes.Buffer
	for b.Len() < n {
		switch rng.IntN(10) {
		case 0:
			r := make([]byte, 20000+rng.IntN(60000))
			for i := range r {
				r[i] = byte(rng.Uint32())
			}
			b.Write(r)
		case 1:
			b.Write(make([]byte, 512+rng.IntN(4096)))
		default:
			for i := 0; i < 2000; i++ {
				b.WriteString(words[rng.IntN(len(words))])
			}
		}
	}
	return b.Bytes()[:n]
}

func compressWith(t testing.TB, r Recipe, content []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := r.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes: the encoders' output must not depend on them.
	for c := content; len(c) > 0; {
		n := min(len(c), 77777)
		w.Write(c[:n])
		c = c[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}


func TestParallelWriterReproducesBlob(t *testing.T) {
	content := mixedContent(3 << 19)
	for _, r := range []Recipe{
		{Format: FormatGzip, Impl: ImplGo, Level: 6},
		{Format: FormatGzip, Impl: ImplGo, Level: 9, Name: "layer.tar", ModTime: 1700000000},
		{Format: FormatGzip, Impl: ImplKlauspost, Level: 6},
	} {
		t.Run(r.String(), func(t *testing.T) {
			blob := compressWith(t, r, content)
			rs, err := FindSyncPoints(context.Background(), opener(blob), r, SyncOptions{Jobs: 2, Segment: MinSyncSegment})
			if err != nil {
				t.Fatal(err)
			}
			if r.Impl == ImplGo && len(rs.Sync) < 3 {
				t.Fatalf("only %d sync points in %d bytes", len(rs.Sync), len(content))
			}
			t.Logf("%d sync points", len(rs.Sync))
			if err := rs.Validate(); err != nil {
				t.Fatal(err)
			}
			for _, workers := range []int{1, 2, 3, 8} {
				var out bytes.Buffer
				w, err := rs.NewParallelWriter(&out, workers)
				if err != nil {
					t.Fatal(err)
				}
				for c := content; len(c) > 0; {
					n := min(len(c), 1+len(c)%100000)
					if _, err := w.Write(c[:n]); err != nil {
						t.Fatal(err)
					}
					c = c[n:]
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), blob) {
					t.Fatalf("workers %d: %d bytes, not the blob's %d", workers, out.Len(), len(blob))
				}
			}
		})
	}
}

// A recipe whose sync points were not made from this content (hostile,
// or another encoder version) fails, never writing a wrong blob quietly.
func TestParallelWriterWrongSyncPoints(t *testing.T) {
	content := mixedContent(3 << 19)
	r := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}
	blob := compressWith(t, r, content)
	rs, err := FindSyncPoints(context.Background(), opener(blob), r, SyncOptions{Jobs: 2, Segment: MinSyncSegment})
	if err != nil || len(rs.Sync) < 2 {
		t.Fatal(len(rs.Sync), err)
	}
	bad := rs
	bad.Sync = append([]SyncPoint(nil), rs.Sync...)
	bad.Sync[1].Out -= 10
	var out bytes.Buffer
	w, _ := bad.NewParallelWriter(&out, 2)
	w.Write(content)
	err = w.Close()
	if err == nil && bytes.Equal(out.Bytes(), blob) {
		t.Fatal("wrong sync points rebuilt the blob")
	}
	short := rs
	w, _ = short.NewParallelWriter(&out, 2)
	w.Write(content[:rs.Sync[len(rs.Sync)-1].In-1])
	if err := w.Close(); err == nil {
		t.Fatal("content ending before a sync point was accepted")
	}
}
