package resolve

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// TestReadAheadInflates: the read-ahead inflater gives the content
// exactly, reports a corrupt stream as an error (not an early end), and
// can be closed half-way.
func TestReadAheadInflates(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	content := make([]byte, 5<<20+123)
	for i := range content {
		content[i] = byte(rng.IntN(16))
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(content)
	zw.Close()
	open := func(blob []byte) *readAhead {
		zr, err := kgzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatal(err)
		}
		return newReadAhead(zr, io.NopCloser(nil))
	}
	r := open(b.Bytes())
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	r.Close()
	cut := open(b.Bytes()[:b.Len()/2])
	if _, err := io.ReadAll(cut); err == nil {
		t.Fatal("a truncated stream read to its end without an error")
	}
	cut.Close()
	half := open(b.Bytes())
	io.ReadFull(half, make([]byte, 1000))
	if err := half.Close(); err != nil {
		t.Fatal(err)
	}
}
