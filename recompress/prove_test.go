package recompress

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"slices"
	"testing"
)

// TestSyncProofNeedsTheFraming: the segments of a Go gzip -6 blob all
// reproduce whatever surrounds its deflate stream, so the proof must also
// see the blob's own gzip header and nothing but the trailer after the
// stream. Each variant keeps the deflate stream and changes the framing;
// only the blob as written is proven, and the sync points are the same.
func TestSyncProofNeedsTheFraming(t *testing.T) {
	data := wordText(3)
	blob, _ := gzipped(data.Bytes(), 6)
	rec := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}
	variants := []struct {
		name   string
		blob   []byte
		proven bool
	}{
		{"as written", blob, true},
		{"XFL changed", func() []byte { b := bytes.Clone(blob); b[8] = 2; return b }(), false},
		{"OS changed", func() []byte { b := bytes.Clone(blob); b[9] = 3; return b }(), false},
		{"a zero byte after the trailer", append(bytes.Clone(blob), 0), false},
		{"an empty second member", func() []byte {
			var b bytes.Buffer
			b.Write(blob)
			zw, _ := gzip.NewWriterLevel(&b, 6)
			zw.Close()
			return b.Bytes()
		}(), false},
	}
	var points []SyncPoint
	for _, v := range variants {
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(v.blob)), nil }
		got, proven, err := FindSyncPointsProving(context.Background(), open, rec, SyncOptions{Jobs: 2, Segment: MinSyncSegment})
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if proven != v.proven {
			t.Errorf("%s: proven %v, want %v", v.name, proven, v.proven)
		}
		if len(got.Sync) < 1 {
			t.Fatalf("%s: %d sync points, want some", v.name, len(got.Sync))
		}
		if points == nil {
			points = got.Sync
		} else if !slices.Equal(points, got.Sync) {
			t.Errorf("%s: other sync points", v.name)
		}
	}
}

// TestSyncProofNotForUnsyncable: a recipe with no sync points (Go gzip
// level 1 ignores a dictionary) proves nothing: Detect must check it.
func TestSyncProofNotForUnsyncable(t *testing.T) {
	data := wordText(4)
	_, open := gzipped(data.Bytes(), 1)
	got, proven, err := FindSyncPointsProving(context.Background(), open, Recipe{Format: FormatGzip, Impl: ImplGo, Level: 1}, SyncOptions{Jobs: 2})
	if err != nil || proven || len(got.Sync) != 0 {
		t.Fatalf("level 1: %d sync points, proven %v, %v; want none, not proven", len(got.Sync), proven, err)
	}
}

// TestSegmentWriterOneWorker: NewSegmentWriter builds the blob from its
// segments with one worker too, the same bytes as with several. With a
// sync point the serial encoder does not pass through (a blob only the
// segments give: what a plan that proved a blob segment by segment
// could, in principle, have accepted), the serial writer's output
// differs and the segment writer's does not.
func TestSegmentWriterOneWorker(t *testing.T) {
	data := wordText(5)
	z, open := gzipped(data.Bytes(), 6)
	rec, err := FindSyncPoints(context.Background(), open, Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}, SyncOptions{Jobs: 2, Segment: MinSyncSegment})
	if err != nil || len(rec.Sync) == 0 {
		t.Fatalf("sync points: %v, %v", rec.Sync, err)
	}
	build := func(r Recipe, mk func(io.Writer) (io.WriteCloser, error)) []byte {
		t.Helper()
		var out bytes.Buffer
		w, err := mk(&out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data.Bytes()); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	one := func(r Recipe) func(io.Writer) (io.WriteCloser, error) {
		return func(w io.Writer) (io.WriteCloser, error) { return r.NewSegmentWriter(w, 1) }
	}
	two := func(r Recipe) func(io.Writer) (io.WriteCloser, error) {
		return func(w io.Writer) (io.WriteCloser, error) { return r.NewParallelWriter(w, 2) }
	}
	if got := build(rec, one(rec)); !bytes.Equal(got, z) {
		t.Fatal("segments with one worker: not the blob")
	}
	odd := rec
	odd.Sync = []SyncPoint{{In: MinSyncSegment, Out: 1000}}
	if err := odd.Validate(); err != nil {
		t.Fatal(err)
	}
	segs := build(odd, one(odd))
	if !bytes.Equal(segs, build(odd, two(odd))) {
		t.Fatal("one worker and two build other segment blobs")
	}
	if bytes.Equal(segs, build(odd, odd.NewWriter)) {
		t.Fatal("the serial writer gives the segment-only blob too: the case is not shown")
	}
}

// gzipped is data as Go's gzip at level writes it, and an opener of it.
func gzipped(data []byte, level int) ([]byte, func() (io.ReadCloser, error)) {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, level)
	zw.Write(data)
	zw.Close()
	return z.Bytes(), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(z.Bytes())), nil }
}

// TestSegmentWriterMemory: NewSegmentWriter with one worker holds two
// segments' input (the one compressing, the next one arriving), which
// ParallelMemory(1) — the serial writer's — does not count; with several
// workers the two writers are the same and so is their memory; without
// sync points both are the serial writer.
func TestSegmentWriterMemory(t *testing.T) {
	serial := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}
	synced := serial
	synced.Sync = []SyncPoint{{In: 4 << 20, Out: 1 << 20}, {In: 6 << 20, Out: 3 << 19}}
	for _, n := range []int{1, 2, 4} {
		if m := serial.SegmentWriterMemory(n); m != serial.WriterMemory() {
			t.Errorf("no sync points, %d workers: %d, want WriterMemory %d", n, m, serial.WriterMemory())
		}
	}
	if m := synced.SegmentWriterMemory(1); m < 2*synced.maxSyncGap() || m <= synced.ParallelMemory(1) {
		t.Errorf("one worker: %d, want at least two 4 MiB segments and more than the serial writer's %d", m, synced.ParallelMemory(1))
	}
	for _, n := range []int{2, 4} {
		if synced.SegmentWriterMemory(n) != synced.ParallelMemory(n) {
			t.Errorf("%d workers: segment writer %d, parallel writer %d", n, synced.SegmentWriterMemory(n), synced.ParallelMemory(n))
		}
	}
}
