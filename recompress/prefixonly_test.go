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

// TestDetectOnPrefix: OnPrefix sees the candidate that passed the prefix
// before the whole blob is checked: on a one-member blob it is what
// Detect returns; on the two-member blob above Detect still fails, so a
// caller that started work for it must not keep it.
func TestDetectOnPrefix(t *testing.T) {
	data := wordText(2)
	for _, members := range [][][]byte{{data.Bytes()}, {data.Bytes(), []byte("a second member")}} {
		var blob bytes.Buffer
		for _, part := range members {
			zw, _ := gzip.NewWriterLevel(&blob, 9)
			zw.Write(part)
			zw.Close()
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob.Bytes())), nil }
		var seen []Recipe
		rec, err := Detect(context.Background(), open, DetectOptions{OnPrefix: func(r Recipe) { seen = append(seen, r) }})
		if len(seen) != 1 || seen[0].Impl != ImplGo || seen[0].Level != 9 {
			t.Fatalf("%d members: OnPrefix saw %v, want Go gzip -9 once", len(members), seen)
		}
		switch {
		case len(members) == 1 && (err != nil || !reflect.DeepEqual(rec, seen[0])):
			t.Fatalf("one member: Detect gave %v, %v; OnPrefix saw %v", rec, err, seen[0])
		case len(members) == 2 && !errors.Is(err, ErrNotReproducible):
			t.Fatalf("two members: Detect gave %v, %v, want ErrNotReproducible", rec, err)
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
