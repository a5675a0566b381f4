package recompress

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"slices"
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

func TestValidateSyncRefusesHostilePoints(t *testing.T) {
	base := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}
	ok := base
	ok.Sync = []SyncPoint{{In: 1 << 20, Out: 400 << 10}, {In: 3 << 20, Out: 900 << 10}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	many := base
	for i := 1; i <= MaxSyncPoints+1; i++ {
		many.Sync = append(many.Sync, SyncPoint{In: int64(i) * MinSyncSegment, Out: int64(i) * 1000})
	}
	for name, r := range map[string]Recipe{
		"too many":          many,
		"not increasing":    {Format: FormatGzip, Impl: ImplGo, Level: 6, Sync: []SyncPoint{{In: 1 << 20, Out: 9}, {In: 1 << 20, Out: 10}}},
		"segment too long":  {Format: FormatGzip, Impl: ImplGo, Level: 6, Sync: []SyncPoint{{In: MaxSyncSegment + 1, Out: 9}}},
		"segment too short": {Format: FormatGzip, Impl: ImplGo, Level: 6, Sync: []SyncPoint{{In: MinSyncSegment - 1, Out: 9}}},
		"output backwards":  {Format: FormatGzip, Impl: ImplGo, Level: 6, Sync: []SyncPoint{{In: 1 << 20, Out: 9}, {In: 2 << 20, Out: 8}}},
		"output too large":  {Format: FormatGzip, Impl: ImplGo, Level: 6, Sync: []SyncPoint{{In: 1 << 20, Out: 2 << 20}}},
		"negative":          {Format: FormatGzip, Impl: ImplGo, Level: 6, Sync: []SyncPoint{{In: -1 << 20, Out: -9}}},
		"level 1":           {Format: FormatGzip, Impl: ImplGo, Level: 1, Sync: ok.Sync},
		"pgzip":             {Format: FormatGzip, Impl: ImplPgzip, Level: 6, BlockSize: 1 << 20, Blocks: 2, Sync: ok.Sync},
		"zstd":              {Format: FormatZstd, Impl: ImplKlauspost, Level: 2, Sync: ok.Sync},
		"none":              {Format: FormatNone, Sync: ok.Sync},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The JSON is refused by size before it is decoded.
	huge := append([]byte(`{"format":"gzip","impl":"go","level":6,"sync":[`), bytes.Repeat([]byte(`{"in":1,"out":1},`), maxRecipeJSON/16)...)
	if _, err := ParseRecipe(huge); err == nil {
		t.Fatal("a huge recipe was parsed")
	}
}

// FuzzSyncRecipe: any recipe ParseRecipe accepts, sync points included,
// builds a writer within its ParallelMemory that either reproduces
// nothing wrong quietly or fails; never a panic or a hang.
func FuzzSyncRecipe(f *testing.F) {
	f.Add([]byte(`{"format":"gzip","impl":"go","level":6,"sync":[{"in":262144,"out":1000}]}`))
	f.Add([]byte(`{"format":"gzip","impl":"klauspost","level":9,"sync":[{"in":300000,"out":70},{"in":600000,"out":200}]}`))
	f.Add([]byte(`{"format":"gzip","impl":"go","level":6,"sync":[{"in":16777216,"out":16777216}]}`))
	content := mixedContent(700 << 10)
	f.Fuzz(func(t *testing.T, js []byte) {
		r, err := ParseRecipe(js)
		if err != nil || len(r.Sync) == 0 {
			return
		}
		if m := r.ParallelMemory(4); m > 5*(2*(MaxSyncSegment+1<<20))+16<<20 {
			t.Fatalf("recipe %s: ParallelMemory %d", r, m)
		}
		w, err := r.NewParallelWriter(io.Discard, 2)
		if err != nil {
			t.Fatalf("valid recipe %s: %v", r, err)
		}
		w.Write(content)
		w.Close()
	})
}

func TestMergeDropsFailedStarts(t *testing.T) {
	p := func(n int64) SyncPoint { return SyncPoint{In: n << 20, Out: n << 18} }
	cands := []SyncPoint{{}, p(2), p(4), p(6), p(8), p(10)}
	keep, again, failed := merge(cands, []bool{true, true, false, true, false, false})
	want := []SyncPoint{{}, p(2), p(6)}
	if !failed || !slices.Equal(keep, want) || !slices.Equal(again, []bool{false, true, true}) {
		t.Fatalf("keep %v again %v failed %v", keep, again, failed)
	}
	// The first segment cannot lose its start: it loses its end.
	keep, again, _ = merge(cands, []bool{false, true, true, true, true, true})
	if !slices.Equal(keep, []SyncPoint{{}, p(4), p(6), p(8), p(10)}) || !slices.Equal(again, []bool{true, false, false, false, false}) {
		t.Fatalf("keep %v again %v", keep, again)
	}
	if _, _, failed := merge(cands, []bool{true, true, true, true, true, true}); failed {
		t.Fatal("nothing failed")
	}
}
