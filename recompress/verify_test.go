package recompress

import (
	"context"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// TestVerify: the recipe a blob was made with passes; every way of lying
// about it (format, implementation, level, gzip header, blocks, bytes
// after the stream) is refused as an integrity error, on a blob shorter
// than the prefix (checked whole) and on one longer (checked on a prefix).
func TestVerify(t *testing.T) {
	ctx := context.Background()
	mt := byte(3)
	gzGo6 := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}
	zstdDef := Recipe{Format: FormatZstd, Impl: ImplKlauspost, Level: 2, Concurrency: 1}
	pg := Recipe{Format: FormatGzip, Impl: ImplPgzip, Level: 5, BlockSize: 1 << 20, Blocks: 2}
	for _, size := range []int{200 << 10, 3 << 20} {
		plain := data(size)
		blobs := map[string][]byte{}
		blob := func(r Recipe) []byte {
			k := r.String() + r.Name
			if b, ok := blobs[k]; ok {
				return b
			}
			b := compress(t, r, plain)
			blobs[k] = b
			return b
		}
		named := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6, Name: "layer.tar", ModTime: 1700000000, OS: &mt}
		cases := []struct {
			name   string
			blob   []byte
			recipe Recipe
			want   string // "" = accepted
		}{
			{"honest gzip", blob(gzGo6), gzGo6, ""},
			{"honest gzip header", blob(named), named, ""},
			{"honest zstd", blob(zstdDef), zstdDef, ""},
			{"honest pgzip", blob(pg), pg, ""},
			{"honest none", plain, Recipe{Format: FormatNone}, ""},
			{"level", blob(gzGo6), Recipe{Format: FormatGzip, Impl: ImplGo, Level: 1}, "does not reproduce"},
			{"implementation", blob(gzGo6), Recipe{Format: FormatGzip, Impl: ImplKlauspost, Level: 6}, "does not reproduce"},
			{"gzip header dropped", blob(named), gzGo6, "does not reproduce"},
			{"gzip header added", blob(gzGo6), named, "does not reproduce"},
			{"pgzip block size", blob(pg), Recipe{Format: FormatGzip, Impl: ImplPgzip, Level: 5, BlockSize: 1 << 16, Blocks: 2}, "does not reproduce"},
			{"zstd level", blob(zstdDef), Recipe{Format: FormatZstd, Impl: ImplKlauspost, Level: 4, Concurrency: 1}, "does not reproduce"},
			{"zstd crc", blob(zstdDef), Recipe{Format: FormatZstd, Impl: ImplKlauspost, Level: 2, Concurrency: 1, NoCRC: true}, "does not reproduce"},
			{"none for gzip", blob(gzGo6), Recipe{Format: FormatNone}, "the blob is gzip"},
			{"gzip for none", plain, gzGo6, "the blob is not compressed"},
			{"zstd for gzip", blob(gzGo6), zstdDef, "the blob is gzip"},
			{"gzip for zstd", blob(zstdDef), gzGo6, "the blob is zstd"},
			{"invalid", blob(gzGo6), Recipe{Format: FormatGzip, Impl: ImplGo, Level: 42}, "level 42"},
		}
		if size < 1<<20 {
			// Checked whole: bytes after the stream are seen.
			cases = append(cases, struct {
				name   string
				blob   []byte
				recipe Recipe
				want   string
			}{"trailing bytes", append(append([]byte{}, blob(gzGo6)...), 0), gzGo6, "does not reproduce"})
		}
		for _, c := range cases {
			t.Run(c.name+"/"+strings.Repeat("L", size>>20), func(t *testing.T) {
				err := Verify(ctx, opener(c.blob), c.recipe, 0)
				if c.want == "" {
					if err != nil {
						t.Fatalf("honest recipe refused: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatalf("recipe %s accepted for a blob it did not make", c.recipe)
				}
				if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v (kind %d), want an integrity error saying %q", err, fault.KindOf(err, 0), c.want)
				}
			})
		}
	}
}

// TestVerifyCanceled: a canceled context stops the trial.
func TestVerifyCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Recipe{Format: FormatGzip, Impl: ImplGo, Level: 6}
	if err := Verify(ctx, opener(compress(t, r, data(1<<20))), r, 0); err == nil {
		t.Fatal("canceled verification succeeded")
	}
}
