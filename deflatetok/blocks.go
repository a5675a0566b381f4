package deflatetok

import (
	"bufio"
	"context"
	"fmt"
	"io"
)

// Block is a place in a gzip member's deflate data: Bit counts the bits
// before it (from the first bit after the gzip header), Content the
// uncompressed bytes before it.
type Block struct {
	Bit     int64
	Content int64
}

// Member is what Blocks found of a gzip member: the length of its header
// in bytes and where its final block ends (padding not counted).
type Member struct {
	HeaderLen int64
	End       Block
}

// Blocks parses the first member of the gzip blob r and calls fn at the
// start of each of its blocks, in order. It is how a recompression recipe
// finds where its encoder's output may be cut (recompress's sync
// points). An error from fn stops the parse and is returned as it is; a
// stream that is not gzip gives an error wrapping ErrNotGzip. Memory is
// bounded: a fixed reader buffer and the Huffman tables.
func Blocks(ctx context.Context, r io.Reader, fn func(Block) error) (m Member, err error) {
	var fnErr error
	d := &decoder{in: &bitReader{r: bufio.NewReaderSize(r, 1<<20)}, out: bufio.NewWriterSize(io.Discard, 4<<10)}
	d.onBlock = func(b Block) error {
		fnErr = fn(b)
		return fnErr
	}
	d.onHeader = func(n int) { m.HeaderLen = int64(n) }
	d.onEnd = func() { m.End = Block{Bit: d.in.pos*8 - int64(d.in.nbits), Content: d.content} }
	if err := d.member(ctx); err != nil {
		if fnErr != nil {
			return Member{}, fnErr
		}
		return Member{}, fmt.Errorf("%w: %v", ErrNotGzip, err)
	}
	return m, nil
}
