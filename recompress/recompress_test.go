package recompress

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/diffah/diffah/fault"
)

// data returns tar-like test content: text and random runs.
func data(n int) []byte {
	rng := rand.New(rand.NewSource(int64(n)))
	var b bytes.Buffer
	words := strings.Fields("the quick brown fox jumps over the lazy dog package main import func return layer blob digest")
	for b.Len() < n {
		if rng.Intn(4) == 0 {
			r := make([]byte, rng.Intn(4096))
			rng.Read(r)
			b.Write(r)
		} else {
			for i := 0; i < 200; i++ {
				b.WriteString(words[rng.Intn(len(words))])
				b.WriteByte(' ')
			}
		}
	}
	return b.Bytes()[:n]
}

func opener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func compress(t *testing.T, r Recipe, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := r.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes: output must not depend on how input is chunked.
	for i := 0; i < len(plain); i += 7919 {
		w.Write(plain[i:min(i+7919, len(plain))])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDetectRoundTrip(t *testing.T) {
	plain := data(3 << 20)
	var cands []Recipe
	cands = append(cands, Candidates(FormatGzip)...)
	cands = append(cands, Candidates(FormatZstd)...)
	mt := byte(3)
	cands = append(cands, Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6, Name: "layer.tar", ModTime: 1700000000, OS: &mt})
	for _, c := range cands {
		t.Run(c.String(), func(t *testing.T) {
			blob := compress(t, c, plain)
			got, err := Detect(context.Background(), opener(blob), DetectOptions{})
			if err != nil {
				t.Fatalf("not detected: %v", err)
			}
			again := compress(t, got, plain)
			if !bytes.Equal(again, blob) {
				t.Fatalf("detected %s does not reproduce the blob", got)
			}
			// The recipe survives JSON (plans and sidecars carry it).
			js, _ := json.Marshal(got)
			var back Recipe
			if err := json.Unmarshal(js, &back); err != nil || back.Validate() != nil {
				t.Fatalf("recipe JSON %s: %v", js, err)
			}
			if !bytes.Equal(compress(t, back, plain), blob) {
				t.Fatal("recipe from JSON does not reproduce the blob")
			}
		})
	}
}

// ggcr builds layers (our fixtures, crane, ko); every compression setting
// it offers must be reproducible.
func TestDetectGGCRLayer(t *testing.T) {
	plain := data(3 << 20)
	tarLayer := func(opts ...tarball.LayerOption) func() (v1.Layer, error) {
		return func() (v1.Layer, error) { return tarball.LayerFromOpener(opener(plain), opts...) }
	}
	tests := map[string]func() (v1.Layer, error){
		"random.Layer": func() (v1.Layer, error) {
			return random.Layer(1<<20, "application/vnd.oci.image.layer.v1.tar+gzip")
		},
		"tarball gzip default":  tarLayer(),
		"tarball gzip level 9":  tarLayer(tarball.WithCompressionLevel(9)),
		"tarball gzip level -2": tarLayer(tarball.WithCompressionLevel(gzip.HuffmanOnly)),
		"tarball zstd default":  tarLayer(tarball.WithCompression(compression.ZStd)),
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			l, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			rec, err := Detect(context.Background(), l.Compressed, DetectOptions{})
			if err != nil {
				t.Fatalf("ggcr layer not reproducible: %v", err)
			}
			read := func(open func() (io.ReadCloser, error)) []byte {
				rc, err := open()
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				b, err := io.ReadAll(rc)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			if !bytes.Equal(compress(t, rec, read(l.Uncompressed)), read(l.Compressed)) {
				t.Fatalf("%s does not reproduce the ggcr blob", rec)
			}
		})
	}
}

// containers/image (podman, skopeo, buildah) writes gzip layers with
// pgzip's default writer; the number of blocks in flight is a machine
// setting and must not matter, and header fields must be carried over.
func TestDetectPgzipProducer(t *testing.T) {
	plain := data(3 << 20)
	tests := map[string]func(io.Writer) *pgzip.Writer{
		"default": func(w io.Writer) *pgzip.Writer { return pgzip.NewWriter(w) },
		"8 blocks level 1": func(w io.Writer) *pgzip.Writer {
			zw, _ := pgzip.NewWriterLevel(w, 1)
			if err := zw.SetConcurrency(1<<20, 8); err != nil {
				t.Fatal(err)
			}
			return zw
		},
		"header fields": func(w io.Writer) *pgzip.Writer {
			zw := pgzip.NewWriter(w)
			zw.Name, zw.Comment, zw.Extra, zw.OS = "layer.tar", "made by a test", []byte{1, 2, 3, 4}, 3
			zw.ModTime = time.Unix(1700000000, 0)
			return zw
		},
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			zw := mk(&buf)
			if _, err := zw.Write(plain); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			rec, err := Detect(context.Background(), opener(buf.Bytes()), DetectOptions{})
			if err != nil {
				t.Fatalf("pgzip blob not reproducible: %v", err)
			}
			if !bytes.Equal(compress(t, rec, plain), buf.Bytes()) {
				t.Fatalf("%s does not reproduce the pgzip blob", rec)
			}
		})
	}
}

func TestUncompressed(t *testing.T) {
	rec, err := Detect(context.Background(), opener(data(10000)), DetectOptions{})
	if err != nil || rec.Format != FormatNone {
		t.Fatalf("%v %v", rec, err)
	}
	if got := compress(t, rec, []byte("abc")); string(got) != "abc" {
		t.Fatal("identity recipe changed data")
	}
}

func TestNotReproducible(t *testing.T) {
	plain := data(2 << 20)
	tests := map[string]func() []byte{
		"multi-member gzip": func() []byte {
			a := compress(t, Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}, plain[:1<<20])
			b := compress(t, Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}, plain[1<<20:])
			return append(a, b...)
		},
		"trailing garbage": func() []byte {
			return append(compress(t, Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}, plain), 0, 1, 2)
		},
	}
	for _, tool := range [][]string{{"gzip", "-9", "-n", "-c"}, {"zstd", "-19", "-q", "-c"}, {"xz", "-c"}, {"bzip2", "-c"}} {
		tool := tool
		if _, err := exec.LookPath(tool[0]); err != nil {
			continue
		}
		tests[tool[0]+" CLI"] = func() []byte {
			cmd := exec.Command(tool[0], tool[1:]...)
			cmd.Stdin = bytes.NewReader(plain)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			blob := mk()
			rec, err := Detect(context.Background(), opener(blob), DetectOptions{})
			if err == nil {
				// Claiming success is only acceptable when it is true.
				if !bytes.Equal(compress(t, rec, plain), blob) {
					t.Fatalf("claimed %s but it does not reproduce", rec)
				}
				t.Logf("reproduced by %s", rec)
				return
			}
			if !errors.Is(err, ErrNotReproducible) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestCorruptInput(t *testing.T) {
	blob := compress(t, Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}, data(1<<20))
	for _, b := range [][]byte{blob[:100], append([]byte{0x1f, 0x8b, 9}, blob[3:]...), {0x1f, 0x8b}, {0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3}} {
		if _, err := Detect(context.Background(), opener(b), DetectOptions{}); err == nil {
			t.Errorf("corrupt blob % x… detected as reproducible", b[:min(8, len(b))])
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Detect(ctx, opener(blob), DetectOptions{}); err == nil {
		t.Error("cancelled context ignored")
	}
}

func TestValidate(t *testing.T) {
	bad := []Recipe{
		{Format: "brotli"},
		{Format: FormatGzip, Impl: "pigz", Level: 6},
		{Format: FormatGzip, Impl: ImplGo, Level: 11},
		{Format: FormatGzip, Impl: ImplGo, Level: 0},
		{Format: FormatZstd, Impl: ImplGo, Level: 2},
		{Format: FormatZstd, Impl: ImplKlauspost, Level: 9},
		{Format: FormatGzip, Impl: ImplPgzip, Level: 6, BlockSize: 1, Blocks: 1},
		{Format: FormatNone, Level: 3},
		{Format: FormatNone, Name: "x"},
		{Format: FormatGzip, Impl: ImplGo, Level: 6, Concurrency: 1},
		{Format: FormatGzip, Impl: ImplKlauspost, Level: 6, BlockSize: 1 << 20},
		{Format: FormatZstd, Impl: ImplKlauspost, Level: 2, Name: "x"},
		{Format: FormatGzip, Impl: ImplGo, Level: 6, Name: strings.Repeat("n", 2000)},
	}
	for _, r := range bad {
		err := r.Validate()
		if fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("%+v: err = %v", r, err)
		}
		if _, err := r.NewWriter(io.Discard); err == nil {
			t.Errorf("%+v: NewWriter accepted an invalid recipe", r)
		}
	}
}

func TestParseRecipe(t *testing.T) {
	tests := []struct {
		js string
		ok bool
	}{
		{`{"format":"gzip","impl":"go","level":6,"modTime":1700000000,"os":3}`, true},
		{`{"format":"none"}`, true},
		{`{"format":"gzip","impl":"go","level":6,"speed":1}`, false},
		{`{"format":"gzip","impl":"go","level":6} {}`, false},
		{`{"format":"gzip","impl":"go","level":"6"}`, false},
		{`{"format":"zstd","impl":"klauspost","level":5}`, false},
		{`[]`, false},
		{``, false},
	}
	for _, tt := range tests {
		r, err := ParseRecipe([]byte(tt.js))
		if tt.ok != (err == nil) {
			t.Errorf("%s: err = %v", tt.js, err)
		}
		if err != nil && fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("%s: err %v is not Integrity", tt.js, err)
		}
		if err == nil && r.Format == "" {
			t.Errorf("%s: empty recipe", tt.js)
		}
	}
}

// The zstd encoder's output must not depend on how many goroutines it
// uses, or a recipe recorded on one machine would fail on another.
func TestZstdConcurrencyIndependent(t *testing.T) {
	plain := data(4 << 20)
	var outs [][]byte
	for _, c := range []int{1, 2, 4} {
		var b bytes.Buffer
		w, _ := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(c))
		w.Write(plain)
		w.Close()
		outs = append(outs, b.Bytes())
	}
	for i := 1; i < len(outs); i++ {
		if !bytes.Equal(outs[0], outs[i]) {
			t.Logf("zstd output differs with concurrency: recipes pin Concurrency")
			return
		}
	}
}

func FuzzDetect(f *testing.F) {
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255, 1, 2, 3})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0})
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("hello hello hello"))
	zw.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, blob []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		Detect(ctx, opener(blob), DetectOptions{PrefixBytes: 1 << 10})
	})
}

func FuzzRecipeJSON(f *testing.F) {
	f.Add([]byte(`{"format":"gzip","impl":"go","level":6}`))
	f.Add([]byte(`{"format":"zstd","impl":"klauspost","level":2,"concurrency":1}`))
	f.Add([]byte(`{"format":"gzip","impl":"pgzip","level":6,"blockSize":1048576,"blocks":2}`))
	// recipe bombs: huge pgzip blocks × blocks, huge zstd concurrency
	f.Add([]byte(`{"format":"gzip","impl":"pgzip","level":5,"blockSize":67108864,"blocks":1024}`))
	f.Add([]byte(`{"format":"zstd","impl":"klauspost","level":4,"concurrency":256}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		r, err := ParseRecipe(js)
		if err != nil {
			return
		}
		w, err := r.NewWriter(io.Discard)
		if err != nil {
			t.Fatalf("valid recipe %s: %v", r, err)
		}
		w.Write([]byte("data"))
		w.Close()
	})
}

func BenchmarkDetect(b *testing.B) {
	plain := data(64 << 20)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, 6)
	zw.Write(plain)
	zw.Close()
	blob := buf.Bytes()
	b.SetBytes(int64(len(plain)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Detect(context.Background(), opener(blob), DetectOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMagics: the one home of the gzip and zstd magics tells them apart
// from each other, from a tar and from a short head.
func TestMagics(t *testing.T) {
	for _, c := range []struct {
		head       []byte
		gzip, zstd bool
	}{
		{[]byte{0x1f, 0x8b, 8, 0}, true, false},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, false, true},
		{[]byte{0x28, 0xb5, 0x2f}, false, false},
		{[]byte("etc/passwd"), false, false},
		{nil, false, false},
	} {
		if IsGzip(c.head) != c.gzip || IsZstd(c.head) != c.zstd {
			t.Errorf("% x: IsGzip %v IsZstd %v, want %v %v", c.head, IsGzip(c.head), IsZstd(c.head), c.gzip, c.zstd)
		}
	}
}
