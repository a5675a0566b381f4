package deflatetok

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/diffah/diffah/internal/peakrss"
)

// TestChildMemory is the child of TestBoundedMemory: a gzip stream of
// size bytes of generated content, made as it is read, goes to its token
// form on disk and back, and must come back exactly.
func TestChildMemory(t *testing.T) {
	if dir := os.Getenv("DIFFAH_DEFLATETOK_CHILD_MODEL"); dir != "" {
		childRebuildModel(t, dir)
		return
	}
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
	dir := os.Getenv("DIFFAH_DEFLATETOK_DIR") // where the blob is kept
	if dir == "" {
		dir = t.TempDir()
	}
	blob, err := os.Create(filepath.Join(dir, "blob"))
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

// childRebuildModel rebuilds dir/blob from dir/model, its model form, and
// its content, streamed from it as RebuildModel reads it.
func childRebuildModel(t *testing.T, dir string) {
	blob, err := os.Open(filepath.Join(dir, "blob"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := os.Open(filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	n, err := io.Copy(want, blob)
	if err != nil {
		t.Fatal(err)
	}
	blob.Seek(0, 0)
	cr, cw := io.Pipe()
	go func() { cw.CloseWithError(Inflate(cw, blob)) }()
	got := sha256.New()
	if err := RebuildModel(context.Background(), got, bufio.NewReader(mf), cr, EncodeOptions{MaxOutput: n}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("model round trip differs")
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// TestBoundedMemory measures the peak RSS of rewriting a large gzip
// stream to its token form and back, and of rebuilding it from its model
// form (RebuildModel) (DIFFAH_DEFLATETOK_MEM_SIZE bytes of
// content, default 64 MiB): it stays at a few buffers, whatever the size.
func TestBoundedMemory(t *testing.T) {
	size := int64(64 << 20)
	if s := os.Getenv("DIFFAH_DEFLATETOK_MEM_SIZE"); s != "" {
		size, _ = strconv.ParseInt(s, 10, 64)
	}
	if !peakrss.Available() {
		t.Skip("GNU time (/usr/bin/time) not installed: run scripts/deps.sh")
	}
	dir := t.TempDir()
	measure := func(what string, env ...string) {
		child := exec.Command(os.Args[0], "-test.run=^TestChildMemory$", "-test.count=1")
		child.Env = append(append(os.Environ(), "DIFFAH_DEFLATETOK_DIR="+dir), env...)
		var outb bytes.Buffer
		child.Stdout, child.Stderr = &outb, &outb
		peak, err := peakrss.Run(child)
		kb, out := peak>>10, outb.Bytes()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		t.Logf("%s: peak RSS %d MiB for %d MiB of content", what, kb>>10, size>>20)
		if kb > 64<<10 {
			t.Fatalf("%s: peak RSS %d MiB, want under 64 MiB", what, kb>>10)
		}
	}
	measure("token form and back", fmt.Sprintf("DIFFAH_DEFLATETOK_CHILD=%d", size))
	// The blob's model form (pack's side, here), then the blob rebuilt
	// from it as resolve does (RebuildModel), measured.
	blob, err := os.ReadFile(filepath.Join(dir, "blob"))
	if err != nil {
		t.Fatal(err)
	}
	var form, content bytes.Buffer
	if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	if err := Inflate(&content, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	mf, err := os.Create(filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EncodeModel(context.Background(), mf, &form, &content, Levels[1], int64(len(blob))); err != nil {
		t.Fatal(err)
	}
	if err := mf.Close(); err != nil {
		t.Fatal(err)
	}
	measure("model form to the blob", "DIFFAH_DEFLATETOK_CHILD_MODEL="+dir)
}
