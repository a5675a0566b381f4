// Package spool holds layer content spooled to temporary files: the
// uncompressed tars that patches are computed from (pack) and applied to
// (resolve) need random access, and holding them in memory would make
// memory grow with layer size.
package spool

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/internal/ctxio"
)

// File is a spooled, verified uncompressed layer.
type File struct {
	f    *os.File
	size int64
}

// ReadAt implements io.ReaderAt.
func (s *File) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }

// Reader returns a fresh sequential reader over the content.
func (s *File) Reader() io.Reader { return io.NewSectionReader(s.f, 0, s.size) }

// Size is the length of the content.
func (s *File) Size() int64 { return s.size }

// Cache spools each layer at most once and removes the files on Close.
type Cache struct {
	dir   string
	mu    sync.Mutex
	files map[digest.Digest]*entry
}

type entry struct {
	once sync.Once
	file *File
	err  error
}

// NewCache spools into dir ("" = the system temp dir).
func NewCache(dir string) *Cache {
	return &Cache{dir: dir, files: map[digest.Digest]*entry{}}
}

// Uncompressed returns layer's uncompressed content, spooled to disk and
// checked against diffID (the sha256 the image config promises), so a
// baseline whose blob does not match its digest is caught here.
func (c *Cache) Uncompressed(ctx context.Context, layer v1.Layer, diffID digest.Digest, what string) (*File, error) {
	return c.once(diffID, func() (*File, error) {
		f, err := c.spool(ctx, layer.Uncompressed, diffID, what)
		if errors.Is(err, errContent) {
			// A read error that is not the disk's or the context's comes
			// from decompressing the layer: its content is corrupt.
			return nil, fault.Errorf(fault.Integrity, "%s is corrupt: %w", what, errors.Unwrap(err))
		}
		if errors.Is(err, errDigest) {
			return nil, fault.Errorf(fault.Integrity, "%s: uncompressed content is %s, its config says %s: the image is corrupt", what, errors.Unwrap(err), diffID)
		}
		return f, err
	})
}

// once spools the content named key at most once.
func (c *Cache) once(key digest.Digest, spool func() (*File, error)) (*File, error) {
	c.mu.Lock()
	e, ok := c.files[key]
	if !ok {
		e = &entry{}
		c.files[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.file, e.err = spool() })
	return e.file, e.err
}

// Sentinels of spool, which its callers turn into their messages; each
// wraps the detail (the read error, the digest found).
var (
	errContent = errors.New("content")
	errDigest  = errors.New("digest")
)

type wrapped struct {
	kind, err error
}

func (w wrapped) Error() string        { return w.err.Error() }
func (w wrapped) Is(target error) bool { return target == w.kind }
func (w wrapped) Unwrap() error        { return w.err }

// spool copies what open returns to an unlinked temporary file, checking
// its sha256 against want.
func (c *Cache) spool(ctx context.Context, open func() (io.ReadCloser, error), want digest.Digest, what string) (*File, error) {
	rc, err := open()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "opening %s: %w", what, err)
	}
	defer rc.Close()
	f, err := atomicdir.Scratch(c.dir, "spooling "+what)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxio.Reader{Ctx: ctx, R: rc})
	if err != nil {
		f.Close()
		var pe *os.PathError
		if fault.KindOf(err, 0) != 0 || errors.As(err, &pe) || errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("spooling %s: %w", what, err)
		}
		return nil, wrapped{errContent, err}
	}
	if got := digest.NewDigest(digest.SHA256, h); got != want {
		f.Close()
		return nil, wrapped{errDigest, errors.New(got.String())}
	}
	return &File{f: f, size: n}, nil
}

// Close releases every spooled file.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	closeEntries(c.files)
	return nil
}

// closeEntries closes and forgets every spooled file of m.
func closeEntries(m map[digest.Digest]*entry) {
	for k, e := range m {
		if e.file != nil {
			e.file.f.Close()
		}
		delete(m, k)
	}
}

// String names a spooled file for logs.
func (s *File) String() string { return fmt.Sprintf("spool(%d bytes)", s.size) }

// Content returns what open yields, spooled once under key and checked
// against want (its sha256): content that is not a baseline layer, such
// as a layer resolve has just rebuilt, which Drop releases once no one
// needs it. Keys live apart from the diffIDs Uncompressed spools under.
func (c *Cache) Content(ctx context.Context, key string, open func() (io.ReadCloser, error), want digest.Digest, what string) (*File, error) {
	return c.once(digest.Digest("content+"+key), func() (*File, error) {
		f, err := c.spool(ctx, open, want, what)
		if errors.Is(err, errContent) {
			return nil, fault.Errorf(fault.Integrity, "%s is corrupt: %w", what, errors.Unwrap(err))
		}
		if errors.Is(err, errDigest) {
			return nil, fault.Errorf(fault.Integrity, "%s: content is %s, expected %s", what, errors.Unwrap(err), want)
		}
		return f, err
	})
}

// Drop closes and forgets what Content spooled under key; the caller
// makes sure no one reads it any more.
func (c *Cache) Drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := digest.Digest("content+" + key)
	if e, ok := c.files[k]; ok {
		if e.file != nil {
			e.file.f.Close()
		}
		delete(c.files, k)
	}
}
