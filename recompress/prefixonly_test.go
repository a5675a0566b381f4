package recompress

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand"
	"reflect"
	"testing"
)

// TestDetectPrefixOnly: a blob whose first MiB Go's gzip -6 reproduces
// but whose whole does not (a second gzip member follows) has no recipe;
// with PrefixOnly the prefix decides and gzip -6 is returned.
func TestDetectPrefixOnly(t *testing.T) {
	data := wordText(1)
	var blob bytes.Buffer
	for _, part := range [][]byte{data.Bytes(), []byte("a second member")} {
		zw, _ := gzip.NewWriterLevel(&blob, 6)
		zw.Write(part)
		zw.Close()
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob.Bytes())), nil }
	if _, err := Detect(context.Background(), open, DetectOptions{}); !errors.Is(err, ErrNotReproducible) {
		t.Fatalf("Detect on a two-member blob: %v, want ErrNotReproducible", err)
	}
	rec, err := Detect(context.Background(), open, DetectOptions{PrefixOnly: true})
	if err != nil {
		t.Fatalf("Detect PrefixOnly: %v", err)
	}
	if rec.Format != FormatGzip || rec.Impl != ImplGo || rec.Level != 6 {
		t.Fatalf("PrefixOnly gave %s, want Go gzip -6", rec)
	}
}

// TestDetectProve: Prove sees the candidate that passed the prefix
// before the whole blob is checked. With the sync-point search as the
// proof: on a one-member blob it proves it, and Detect returns it; on the
// two-member blob above the segments all reproduce the first member but
// the proof fails (something follows the trailer), and Detect's own full
// check still refuses the blob.
func TestDetectProve(t *testing.T) {
	data := wordText(2)
	for _, members := range [][][]byte{{data.Bytes()}, {data.Bytes(), []byte("a second member")}} {
		var blob bytes.Buffer
		for _, part := range members {
			zw, _ := gzip.NewWriterLevel(&blob, 6)
			zw.Write(part)
			zw.Close()
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob.Bytes())), nil }
		var seen []Recipe
		var proved []bool
		prove := func(r Recipe) (bool, error) {
			seen = append(seen, r)
			_, ok, err := FindSyncPointsProving(context.Background(), open, r, SyncOptions{Jobs: 2, Segment: MinSyncSegment})
			proved = append(proved, ok)
			return ok, err
		}
		rec, err := Detect(context.Background(), open, DetectOptions{Prove: prove})
		if len(seen) != 1 || seen[0].Impl != ImplGo || seen[0].Level != 6 {
			t.Fatalf("%d members: Prove saw %v, want Go gzip -6 once", len(members), seen)
		}
		switch {
		case len(members) == 1 && (err != nil || !reflect.DeepEqual(rec, seen[0]) || !proved[0]):
			t.Fatalf("one member: Detect gave %v, %v; Prove saw %v, proved %v", rec, err, seen[0], proved[0])
		case len(members) == 2 && (proved[0] || !errors.Is(err, ErrNotReproducible)):
			t.Fatalf("two members: proved %v; Detect gave %v, %v, want ErrNotReproducible", proved[0], rec, err)
		}
	}
}

// wordText is 3 MiB of words drawn from seed.
func wordText(seed int64) *bytes.Buffer {
	rng := rand.New(rand.NewSource(seed))
	words := []string{"alpha ", "beta ", "gamma ", "delta ", "layer ", "file "}
	var data bytes.Buffer
	for data.Len() < 3<<20 {
		data.WriteString(words[rng.Intn(len(words))])
	}
	return &data
}
