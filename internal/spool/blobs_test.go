package spool

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

// TestBlobsFetchOnce: many readers, some at once, one fetch; each reader
// sees the whole blob from the start.
func TestBlobsFetchOnce(t *testing.T) {
	data := bytes.Repeat([]byte("layer"), 100_000)
	d := digest.FromBytes(data)
	var fetches atomic.Int64
	fetch := func() (io.ReadCloser, error) {
		fetches.Add(1)
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	var b Blobs
	defer b.Close()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := b.Open(d, int64(len(data)), fetch, "blob")
			if err != nil {
				t.Error(err)
				return
			}
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read %d bytes, %v", len(got), err)
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches", n)
	}
}

// TestBlobsFailures: a failed fetch is remembered (no second request), and
// a stream shorter than the size is Integrity.
func TestBlobsFailures(t *testing.T) {
	var b Blobs
	defer b.Close()
	var fetches int
	boom := fault.Errorf(fault.Env, "network down")
	for i := 0; i < 2; i++ {
		_, err := b.Open("sha256:aa", 10, func() (io.ReadCloser, error) { fetches++; return nil, boom }, "blob")
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
	}
	if fetches != 1 {
		t.Fatalf("%d fetches", fetches)
	}
	_, err := b.Open("sha256:bb", 10, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("short")), nil }, "blob sha256:bb")
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "blob sha256:bb") {
		t.Fatal(err)
	}
}
