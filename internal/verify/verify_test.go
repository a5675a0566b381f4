package verify

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

// TestReaderHostileSizes: sizes from untrusted places (near 2^63,
// negative, zero) give an integrity error, never a panic.
func TestReaderHostileSizes(t *testing.T) {
	data := []byte("hello, world")
	good := digest.FromBytes(data)
	for _, c := range []struct {
		name string
		size int64
		want string
	}{
		{"max-int64", math.MaxInt64, "expected 9223372036854775807"},
		{"max-int64-minus-1", math.MaxInt64 - 1, "expected 9223372036854775806"},
		{"negative", -1, "negative expected size"},
		{"min-int64", math.MinInt64, "negative expected size"},
		{"zero", 0, "more than the expected 0 bytes"},
		{"short", 5, "more than the expected 5 bytes"},
		{"long", 100, "12 bytes, expected 100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Copy(io.Discard, bytes.NewReader(data), good, c.size, "blob x")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("kind %v", fault.KindOf(err, 0))
			}
		})
	}
	if _, err := Copy(io.Discard, bytes.NewReader(data), good, int64(len(data)), "blob"); err != nil {
		t.Fatal(err)
	}
}

// TestReaderReadsOnePastSize: an overlong stream is noticed after at most
// one byte more than declared, whatever the buffer size.
func TestReaderReadsOnePastSize(t *testing.T) {
	src := &io.LimitedReader{R: bytes.NewReader(make([]byte, 1<<20)), N: 1 << 20}
	_, err := io.CopyBuffer(io.Discard, NewReader(src, digest.FromString(""), 10, "x"), make([]byte, 64<<10))
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("err = %v", err)
	}
	if read := 1<<20 - src.N; read > 11 {
		t.Fatalf("read %d bytes for a 10-byte blob", read)
	}
}

// TestReaderErrorIsSticky: once the check fails, every later Read returns
// the same error (a caller retrying a Read never sees io.EOF), and
// ReadCloser closes the stream it verifies.
func TestReaderErrorIsSticky(t *testing.T) {
	data := []byte("hello, world")
	want := digest.FromBytes([]byte("something else"))
	c := &closeCount{Reader: bytes.NewReader(data)}
	v := NewReadCloser(c, want, int64(len(data)), "blob x")
	_, err := io.ReadAll(v)
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "blob x: content is") {
		t.Fatalf("err = %v, want an integrity error naming blob x", err)
	}
	for i := 0; i < 3; i++ {
		if n, again := v.Read(make([]byte, 8)); n != 0 || again != err {
			t.Fatalf("read %d after the error: %d, %v; want 0, %v", i, n, again, err)
		}
	}
	if err := v.Close(); err != nil || c.closed != 1 {
		t.Fatalf("Close: %v, closed %d times", err, c.closed)
	}
	// A good stream ends with io.EOF itself.
	ok := NewReader(bytes.NewReader(data), digest.FromBytes(data), int64(len(data)), "blob y")
	if got, err := io.ReadAll(ok); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("good stream: %q, %v", got, err)
	}
	if _, err := ok.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after EOF: %v, want io.EOF", err)
	}
}

type closeCount struct {
	io.Reader
	closed int
}

func (c *closeCount) Close() error { c.closed++; return nil }
