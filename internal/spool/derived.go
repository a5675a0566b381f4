package spool

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/atomicdir"
)

// Derived returns content computed from other content (a blob's token
// form, say), spooled to disk once per key; derive writes it and returns
// an error when it cannot. The caller vouches for what derive reads (a
// verified spool); the result is not checked again.
func (c *Cache) Derived(ctx context.Context, key, what string, derive func(w io.Writer) error) (*File, error) {
	return c.once(digest.Digest("derived+"+key), func() (*File, error) {
		f, err := atomicdir.Scratch(c.dir, "spooling "+what)
		if err != nil {
			return nil, err
		}
		if err := derive(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("spooling %s: %w", what, err)
		}
		if err := ctx.Err(); err != nil {
			f.Close()
			return nil, err
		}
		n, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			f.Close()
			return nil, fault.Errorf(fault.Env, "spooling %s: %w", what, err)
		}
		return &File{f: f, size: n}, nil
	})
}
