package deflatetok

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"testing"
)

// BenchmarkDecode and BenchmarkEncode report MB/s of uncompressed data
// (the requirement: rebuild ≥ 20 MB/s per core).
func benchBlob(b *testing.B) ([]byte, int) {
	data := bytes.Repeat(sample(), 8)
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, 6)
	zw.Write(data)
	zw.Close()
	return z.Bytes(), len(data)
}

func BenchmarkDecode(b *testing.B) {
	blob, n := benchBlob(b)
	b.SetBytes(int64(n))
	for b.Loop() {
		if err := Decode(context.Background(), io.Discard, bytes.NewReader(blob)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	blob, n := benchBlob(b)
	var form, content bytes.Buffer
	Decode(context.Background(), &form, bytes.NewReader(blob))
	Inflate(&content, bytes.NewReader(blob))
	b.SetBytes(int64(n))
	for b.Loop() {
		if err := Encode(context.Background(), io.Discard, bytes.NewReader(form.Bytes()), bytes.NewReader(content.Bytes()), EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
			b.Fatal(err)
		}
	}
}
