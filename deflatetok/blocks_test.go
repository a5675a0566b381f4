package deflatetok

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestBlocksFindEveryBlock: the block starts Blocks reports are where a
// deflate stream cut there decodes to the content from there on (each is
// checked by decoding from it), and the end is where the final block
// ends.
func TestBlocksFindEveryBlock(t *testing.T) {
	// Text-like content and incompressible stretches: many blocks, some
	// of them stored.
	rng := rand.New(rand.NewPCG(3, 4))
	var cb bytes.Buffer
	for cb.Len() < 1<<20 {
		if rng.IntN(8) == 0 {
			for i := 0; i < 30000; i++ {
				cb.WriteByte(byte(rng.Uint32()))
			}
			continue
		}
		for i := 0; i < 3000; i++ {
			cb.WriteString([]string{"usr", "lib", "share", " ", "\n", "doc", "/"}[rng.IntN(7)])
		}
	}
	content := cb.Bytes()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, 6)
	zw.Name = "layer.tar"
	zw.Write(content)
	zw.Close()
	blob := b.Bytes()
	var blocks []Block
	m, err := Blocks(context.Background(), bytes.NewReader(blob), func(b Block) error {
		blocks = append(blocks, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.HeaderLen != int64(10+len("layer.tar")+1) {
		t.Fatalf("header %d bytes", m.HeaderLen)
	}
	if len(blocks) < 3 || blocks[0] != (Block{}) || m.End.Content != int64(len(content)) {
		t.Fatalf("%d blocks, first %+v, end %+v", len(blocks), blocks[0], m)
	}
	if want := int64(len(blob)-8) - m.HeaderLen; (m.End.Bit+7)/8 != want {
		t.Fatalf("final block ends at bit %d, the deflate data has %d bytes", m.End.Bit, want)
	}
	deflate := blob[m.HeaderLen : len(blob)-8]
	aligned := 0
	for i, bl := range blocks {
		if i > 0 && (bl.Bit <= blocks[i-1].Bit || bl.Content < blocks[i-1].Content) {
			t.Fatalf("block %d at %+v after %+v", i, bl, blocks[i-1])
		}
		if bl.Bit%8 != 0 || bl.Content == 0 {
			continue
		}
		// A byte-aligned block decodes on its own, given the window.
		aligned++
		fr := flate.NewReaderDict(bytes.NewReader(deflate[bl.Bit/8:]), content[max(0, bl.Content-32768):bl.Content])
		got, err := io.ReadAll(fr)
		if err != nil || !bytes.Equal(got, content[bl.Content:]) {
			t.Fatalf("block %d at %+v does not decode to the content after it: %v", i, bl, err)
		}
	}
	t.Logf("%d blocks, %d byte-aligned", len(blocks), aligned)
}

func TestBlocksStopsOnCallbackError(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(sample())
	zw.Close()
	stop := errors.New("stop")
	if _, err := Blocks(context.Background(), &b, func(Block) error { return stop }); err != stop {
		t.Fatalf("got %v", err)
	}
	if _, err := Blocks(context.Background(), bytes.NewReader([]byte("not gzip")), func(Block) error { return nil }); !errors.Is(err, ErrNotGzip) {
		t.Fatalf("got %v", err)
	}
}

// FuzzBlocks: arbitrary blobs never panic, and what Blocks reports is in
// order.
func FuzzBlocks(f *testing.F) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(sample()[:3000])
	zw.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, blob []byte) {
		var last Block
		m, err := Blocks(context.Background(), bytes.NewReader(blob), func(b Block) error {
			if b.Bit < last.Bit || b.Content < last.Content {
				t.Fatalf("block %+v after %+v", b, last)
			}
			last = b
			return nil
		})
		if err == nil && (m.End.Bit < last.Bit || m.End.Content < last.Content || m.End.Bit > int64(len(blob))*8) {
			t.Fatalf("end %+v, last block %+v, %d bytes", m.End, last, len(blob))
		}
	})
}
