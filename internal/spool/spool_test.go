package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

// layer is a v1.Layer whose Uncompressed counts how often it is opened.
type layer struct {
	v1.Layer
	data  []byte
	opens atomic.Int32
	err   error
}

func (l *layer) Uncompressed() (io.ReadCloser, error) {
	l.opens.Add(1)
	if l.err != nil {
		return nil, l.err
	}
	return io.NopCloser(bytes.NewReader(l.data)), nil
}

func (l *layer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func sum(b []byte) digest.Digest { return digest.FromBytes(b) }

func TestUncompressedSpoolsOnceAndReadsBack(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("layer content "), 10000)
	l := &layer{data: data}
	c := NewCache(dir)
	defer c.Close()
	var wg sync.WaitGroup
	files := make([]*File, 8)
	for i := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := c.Uncompressed(context.Background(), l, sum(data), "layer")
			if err != nil {
				t.Error(err)
			}
			files[i] = f
		}()
	}
	wg.Wait()
	if n := l.opens.Load(); n != 1 {
		t.Fatalf("layer opened %d times, want once", n)
	}
	for _, f := range files[1:] {
		if f != files[0] {
			t.Fatal("concurrent callers got different spools")
		}
	}
	f := files[0]
	if f.Size() != int64(len(data)) {
		t.Fatalf("size %d, want %d", f.Size(), len(data))
	}
	got := make([]byte, 100)
	if _, err := f.ReadAt(got, 1000); err != nil || !bytes.Equal(got, data[1000:1100]) {
		t.Fatalf("ReadAt: %v, %q", err, got)
	}
	// The spool is unlinked at once: nothing is left in dir even while open.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("spool left %d files in its directory", len(ents))
	}
}

func TestUncompressedRefusesWrongDiffID(t *testing.T) {
	data := []byte("the real bytes")
	c := NewCache(t.TempDir())
	defer c.Close()
	wrong := digest.Digest("sha256:" + string(bytes.Repeat([]byte("0"), 64)))
	_, err := c.Uncompressed(context.Background(), &layer{data: data}, wrong, "baseline layer 1")
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("err = %v (kind %v), want an integrity error", err, fault.KindOf(err, 0))
	}
	if !bytes.Contains([]byte(err.Error()), []byte("baseline layer 1")) {
		t.Fatalf("error does not name the layer: %v", err)
	}
}

func TestUncompressedOpenErrorIsEnv(t *testing.T) {
	c := NewCache(t.TempDir())
	defer c.Close()
	_, err := c.Uncompressed(context.Background(), &layer{err: errors.New("gone")}, sum(nil), "layer")
	if fault.KindOf(err, 0) != fault.Env {
		t.Fatalf("err = %v, want an environment error", err)
	}
}

// corrupt decompresses to an error mid-stream, as a broken gzip does.
type corrupt struct{ n int }

func (c *corrupt) Read(p []byte) (int, error) {
	if c.n > 0 {
		c.n--
		return copy(p, "xxxx"), nil
	}
	return 0, errors.New("flate: corrupt input before offset 8")
}

func TestUncompressedCorruptContentIsIntegrity(t *testing.T) {
	c := NewCache(t.TempDir())
	defer c.Close()
	l := &corruptLayer{}
	_, err := c.Uncompressed(context.Background(), l, sum(nil), "layer")
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("err = %v, want an integrity error", err)
	}
}

type corruptLayer struct{ v1.Layer }

func (corruptLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(&corrupt{n: 2}), nil
}

func TestUncompressedHonoursContext(t *testing.T) {
	c := NewCache(t.TempDir())
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := []byte("x")
	_, err := c.Uncompressed(ctx, &layer{data: data}, sum(data), "layer")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCloseReleases(t *testing.T) {
	data := []byte("abc")
	l := &layer{data: data}
	c := NewCache(t.TempDir())
	f, err := c.Uncompressed(context.Background(), l, sum(data), "layer")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := f.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("spool still readable after Close")
	}
}
