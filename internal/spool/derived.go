package spool

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

// Derived returns content computed from other content (a blob's token
// form, say), spooled to disk once per key; derive writes it and returns
// an error when it cannot. The caller vouches for what derive reads (a
// verified spool); the result is not checked again.
func (c *Cache) Derived(ctx context.Context, key, what string, derive func(w io.Writer) error) (*File, error) {
	return c.once(digest.Digest("derived+"+key), func() (*File, error) {
		f, err := os.CreateTemp(c.dir, "diffah-spool-*")
		if err != nil {
			return nil, fault.Errorf(fault.Env, "spooling %s: %w", what, err)
		}
		os.Remove(f.Name())
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
