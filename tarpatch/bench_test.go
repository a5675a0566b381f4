package tarpatch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

// benchPair is a small generated layer pair: machine-code-like and
// text-like files, each edited, plus new and unchanged files.
func benchPair(b *testing.B) (old, newTar []byte) {
	b.Helper()
	var olds, news []entry
	for i := 0; i < 8; i++ {
		bin, js := rnd(int64(i), 256<<10), textData(int64(100+i), 256<<10)
		olds = append(olds, entry{name: fmt.Sprintf("bin/%d", i), body: bin}, entry{name: fmt.Sprintf("js/%d.js", i), body: js})
		news = append(news, entry{name: fmt.Sprintf("bin/%d", i), body: mutate(bin, int64(i), 20)}, entry{name: fmt.Sprintf("js/%d.js", i), body: mutate(js, int64(i), 20)})
	}
	news = append(news, entry{name: "new.js", body: textData(7, 128<<10)})
	return mktar(b, olds, nil), mktar(b, news, nil)
}

func BenchmarkEncode(b *testing.B) {
	old, newTar := benchPair(b)
	b.SetBytes(int64(len(newTar)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Encode(context.Background(), io.Discard, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	old, newTar := benchPair(b)
	var p bytes.Buffer
	if _, err := Encode(context.Background(), &p, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(newTar)))
	b.ReportMetric(float64(p.Len()), "patch-bytes")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Decode(context.Background(), io.Discard, bytes.NewReader(p.Bytes()), []Source{src(old)}, DecodeOptions{MaxOutput: int64(len(newTar))}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeFileCosts is BenchmarkEncode with FileCosts: compare the
// two for what recording each file's cost adds.
func BenchmarkEncodeFileCosts(b *testing.B) {
	old, newTar := benchPair(b)
	b.SetBytes(int64(len(newTar)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Encode(context.Background(), io.Discard, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{FileCosts: true}); err != nil {
			b.Fatal(err)
		}
	}
}
