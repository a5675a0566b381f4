package recompress

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/peakrss"
)

// TestRecipeLimits: recipe settings beyond what the real compressors use
// (pgzip block size × blocks, zstd concurrency) are refused by the one
// recipe parser, so a hostile sidecar cannot make recompression allocate
// gigabytes; the settings real producers use still pass.
func TestRecipeLimits(t *testing.T) {
	for _, js := range []string{
		`{"format":"gzip","impl":"pgzip","level":5,"blockSize":67108864,"blocks":1024}`,
		`{"format":"gzip","impl":"pgzip","level":5,"blockSize":2097152,"blocks":2}`,
		`{"format":"gzip","impl":"pgzip","level":5,"blockSize":1048576,"blocks":5}`,
		`{"format":"gzip","impl":"pgzip","level":5,"blockSize":1048576,"blocks":0}`,
		`{"format":"zstd","impl":"klauspost","level":4,"concurrency":256}`,
		`{"format":"zstd","impl":"klauspost","level":4,"concurrency":-1}`,
	} {
		if _, err := ParseRecipe([]byte(js)); err == nil || fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("%s: err = %v, want an integrity error", js, err)
		}
	}
	for _, c := range Candidates(FormatGzip) {
		if err := c.Validate(); err != nil {
			t.Errorf("candidate %s refused: %v", c, err)
		}
	}
	for _, c := range Candidates(FormatZstd) {
		if err := c.Validate(); err != nil {
			t.Errorf("candidate %s refused: %v", c, err)
		}
	}
	for _, js := range []string{
		`{"format":"gzip","impl":"pgzip","level":5,"blockSize":1048576,"blocks":4}`,
		`{"format":"zstd","impl":"klauspost","level":4,"concurrency":64}`,
	} {
		if _, err := ParseRecipe([]byte(js)); err != nil {
			t.Errorf("%s: %v", js, err)
		}
	}
}

// TestZstdWriterIgnoresConcurrency: a recipe recording a concurrency
// still produces what one encoder produces.
func TestZstdWriterIgnoresConcurrency(t *testing.T) {
	plain := data(2 << 20)
	var a, b bytes.Buffer
	for i, c := range []int{1, 64} {
		w, err := Recipe{Format: FormatZstd, Impl: ImplKlauspost, Level: int(zstd.SpeedDefault), Concurrency: c}.NewWriter([]*bytes.Buffer{&a, &b}[i])
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		w.Close()
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("output depends on the recorded concurrency")
	}
}

// TestRecipeWriterMemory measures, in a child process, the peak RSS of
// recompressing 16 MiB with the most memory-hungry recipe Validate
// accepts for each implementation: each stays far below the process-wide
// bound (resolve runs one writer per patched layer in flight).
func TestRecipeWriterMemory(t *testing.T) {
	if os.Getenv("DIFFAH_RECIPE_CHILD") != "" {
		r, err := ParseRecipe([]byte(os.Getenv("DIFFAH_RECIPE_CHILD")))
		if err != nil {
			panic(err)
		}
		w, err := r.NewWriter(discard{})
		if err != nil {
			panic(err)
		}
		buf := data(1 << 20)
		for range 16 {
			w.Write(buf)
		}
		w.Close()
		return
	}
	if !peakrss.Available() {
		t.Skip("needs GNU time")
	}
	exe, _ := os.Executable()
	for _, js := range []string{
		fmt.Sprintf(`{"format":"gzip","impl":"pgzip","level":9,"blockSize":%d,"blocks":%d}`, MaxPgzipBlockSize, MaxPgzipBlocks),
		fmt.Sprintf(`{"format":"zstd","impl":"klauspost","level":4,"concurrency":%d}`, MaxZstdConcurrency),
	} {
		cmd := exec.Command(exe, "-test.run=^TestRecipeWriterMemory$")
		cmd.Env = append(os.Environ(), "DIFFAH_RECIPE_CHILD="+js)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		rss, err := peakrss.Run(cmd)
		if err != nil {
			t.Fatalf("%s: %v\n%s", js, err, errb.String())
		}
		t.Logf("%s: peak RSS %d MiB", js, rss>>20)
		if rss > 128<<20 {
			t.Errorf("%s: peak RSS %d MiB, want < 128 MiB", js, rss>>20)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
