package spool

import (
	"io"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/atomicdir"
)

// Blobs downloads each blob once and serves every later read from an
// unlinked temporary file. A registry stream can be read only once, and
// consumers (recompression trials, patching, pushing) open one layer many
// times, some at once; holding several bodies of one blob open would also
// exhaust a client's limit on concurrent fetches.
type Blobs struct {
	mu    sync.Mutex
	files map[digest.Digest]*entry
}

// Open returns a fresh reader over blob d, calling fetch the first time
// only. fetch's stream must verify itself (fail instead of reaching EOF on
// wrong bytes); a failure is remembered and returned to every caller.
func (b *Blobs) Open(d digest.Digest, size int64, fetch func() (io.ReadCloser, error), what string) (io.ReadCloser, error) {
	b.mu.Lock()
	if b.files == nil {
		b.files = map[digest.Digest]*entry{}
	}
	e, ok := b.files[d]
	if !ok {
		e = &entry{}
		b.files[d] = e
	}
	b.mu.Unlock()
	e.once.Do(func() { e.file, e.err = spoolBlob(fetch, size, what) })
	if e.err != nil {
		return nil, e.err
	}
	return io.NopCloser(e.file.Reader()), nil
}

func spoolBlob(fetch func() (io.ReadCloser, error), size int64, what string) (*File, error) {
	rc, err := fetch()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := atomicdir.Scratch("", "spooling "+what)
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(fileWriter{f, what}, rc)
	if err == nil && n != size {
		err = fault.Errorf(fault.Integrity, "%s: %d bytes, want %d", what, n, size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{f: f, size: n}, nil
}

// fileWriter tags a failed spool write (a full disk) as Env.
type fileWriter struct {
	f    *os.File
	what string
}

func (w fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, fault.Errorf(fault.Env, "spooling %s to %s: %w", w.what, os.TempDir(), err)
	}
	return n, nil
}

// Close releases every spooled file.
func (b *Blobs) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	closeEntries(b.files)
	return nil
}
