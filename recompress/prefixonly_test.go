package recompress

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand"
	"testing"
)

// TestDetectPrefixOnly: a blob whose first MiB Go's gzip -6 reproduces
// but whose whole does not (a second gzip member follows) has no recipe;
// with PrefixOnly the prefix decides and gzip -6 is returned.
func TestDetectPrefixOnly(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	words := []string{"alpha ", "beta ", "gamma ", "delta ", "layer ", "file "}
	var data bytes.Buffer
	for data.Len() < 3<<20 {
		data.WriteString(words[rng.Intn(len(words))])
	}
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
