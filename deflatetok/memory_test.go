package deflatetok

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/diffah/diffah/internal/peakrss"
)

// TestChildMemory is the child of TestBoundedMemory: a gzip stream of
// size bytes of generated content, made as it is read, goes to its token
// form on disk and back, and must come back exactly.
func TestChildMemory(t *testing.T) {
	size, _ := strconv.ParseInt(os.Getenv("DIFFAH_DEFLATETOK_CHILD"), 10, 64)
	if size == 0 {
		t.Skip("run by TestBoundedMemory")
	}
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, 1)
		r := rand.New(rand.NewSource(1))
		line := make([]byte, 0, 128)
		for n := int64(0); n < size; n += int64(len(line)) {
			line = fmt.Appendf(line[:0], "%d %x text of a layer\n", r.Intn(1000), r.Int63())
			zw.Write(line)
		}
		pw.CloseWithError(zw.Close())
	}()
	want := sha256.New()
	form, err := os.CreateTemp(t.TempDir(), "form")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := os.CreateTemp(t.TempDir(), "blob")
	if err != nil {
		t.Fatal(err)
	}
	var blobSize countingWriter
	if err := Decode(context.Background(), form, io.TeeReader(pr, io.MultiWriter(want, &blobSize, blob))); err != nil {
		t.Fatal(err)
	}
	// The content, streamed from the blob as Encode reads it.
	blob.Seek(0, 0)
	cr, cw := io.Pipe()
	go func() { cw.CloseWithError(Inflate(cw, blob)) }()
	form.Seek(0, 0)
	got := sha256.New()
	if err := Encode(context.Background(), got, form, cr, EncodeOptions{MaxOutput: int64(blobSize)}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("round trip differs")
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// TestBoundedMemory measures the peak RSS of rewriting a large gzip
// stream to its token form and back (DIFFAH_DEFLATETOK_MEM_SIZE bytes of
// content, default 64 MiB): it stays at a few buffers, whatever the size.
func TestBoundedMemory(t *testing.T) {
	size := int64(64 << 20)
	if s := os.Getenv("DIFFAH_DEFLATETOK_MEM_SIZE"); s != "" {
		size, _ = strconv.ParseInt(s, 10, 64)
	}
	if !peakrss.Available() {
		t.Skip("GNU time (/usr/bin/time) not installed: run scripts/deps.sh")
	}
	child := exec.Command(os.Args[0], "-test.run=^TestChildMemory$", "-test.count=1")
	child.Env = append(os.Environ(), fmt.Sprintf("DIFFAH_DEFLATETOK_CHILD=%d", size))
	var outb bytes.Buffer
	child.Stdout, child.Stderr = &outb, &outb
	peak, err := peakrss.Run(child)
	kb, out := peak>>10, outb.Bytes()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("peak RSS %d MiB for %d MiB of content", kb>>10, size>>20)
	if kb > 64<<10 {
		t.Fatalf("peak RSS %d MiB, want under 64 MiB", kb>>10)
	}
}
