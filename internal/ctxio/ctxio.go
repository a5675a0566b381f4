// Package ctxio holds the small io wrappers: readers that honour a
// context, and byte counters.
package ctxio

import (
	"context"
	"io"
)

// Reader stops a copy when its context is done: each Read first checks
// the context and returns its error.
type Reader struct {
	Ctx context.Context
	R   io.Reader
}

func (c Reader) Read(p []byte) (int, error) {
	if err := c.Ctx.Err(); err != nil {
		return 0, err
	}
	return c.R.Read(p)
}
