package ctxio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestCounting: the counters count what passed, including the part of a
// failed read or write, and pass errors through unchanged.
func TestCounting(t *testing.T) {
	r := &CountingReader{R: strings.NewReader("hello, world")}
	if b, err := io.ReadAll(r); err != nil || string(b) != "hello, world" || r.N != 12 {
		t.Fatalf("reader: %q, %v, N=%d", b, err, r.N)
	}
	boom := errors.New("boom")
	fr := &CountingReader{R: io.MultiReader(strings.NewReader("abc"), errReader{boom})}
	if _, err := io.ReadAll(fr); err != boom || fr.N != 3 {
		t.Fatalf("failing reader: %v, N=%d; want boom, 3", err, fr.N)
	}
	var buf bytes.Buffer
	w := &CountingWriter{W: &buf}
	if _, err := io.WriteString(w, "12345"); err != nil || w.N != 5 || buf.String() != "12345" {
		t.Fatalf("writer: %v, N=%d, %q", err, w.N, buf.String())
	}
	fw := &CountingWriter{W: shortWriter{2, boom}}
	if n, err := fw.Write([]byte("abcd")); n != 2 || err != boom || fw.N != 2 {
		t.Fatalf("failing writer: %d, %v, N=%d", n, err, fw.N)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type shortWriter struct {
	n   int
	err error
}

func (s shortWriter) Write(p []byte) (int, error) { return min(s.n, len(p)), s.err }

// TestReaderStopsWhenDone: a Reader reads until its context is done, then
// returns the context's error without reading.
func TestReaderStopsWhenDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := strings.NewReader("abcdef")
	r := Reader{Ctx: ctx, R: src}
	p := make([]byte, 2)
	if n, err := r.Read(p); n != 2 || err != nil {
		t.Fatalf("before cancel: %d, %v", n, err)
	}
	cancel()
	if n, err := r.Read(p); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %d, %v; want 0, context.Canceled", n, err)
	}
	if src.Len() != 4 {
		t.Fatalf("read %d bytes after cancel", 4-src.Len())
	}
}
