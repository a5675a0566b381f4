package tarpatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/diffah/diffah/internal/ctxio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

type fileSource struct{ *os.File }

func (f fileSource) Size() int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestMeasureCorpus compares the codec with zstd's --patch-from on the
// real layer pairs the corpus tool writes (pairs.json). It is a
// measurement, not a check: it runs only when DIFFAH_TARPATCH_CORPUS names
// a pairs.json and -short is off, and it skips pairs whose new tar exceeds
// DIFFAH_TARPATCH_MAXMB (default 200) so a laptop run stays short.
// Patches go to a temporary directory; sizes and speeds are logged (-v).
// For comparisons in one run: DIFFAH_TARPATCH_NOREF=1 skips the zstd
// references, DIFFAH_TARPATCH_NOADIFF=1 switches ADIFF and XADIFF off
// (the diffah-tar/1 encodings), DIFFAH_TARPATCH_NOXADIFF=1 XADIFF only,
// DIFFAH_TARPATCH_NOPAIR=1 pairing by content (pairing.go).
// DIFFAH_TARPATCH_TOP=N logs the N costliest ops of each patch (file,
// bytes in, bytes out before the shared stream, encoding): where a
// patch's bytes go.
func TestMeasureCorpus(t *testing.T) {
	manifest := os.Getenv("DIFFAH_TARPATCH_CORPUS")
	if manifest == "" || testing.Short() {
		t.Skip("set DIFFAH_TARPATCH_CORPUS=path/to/pairs.json to measure")
	}
	maxMB := int64(200)
	if v := os.Getenv("DIFFAH_TARPATCH_MAXMB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("DIFFAH_TARPATCH_MAXMB=%q: %v", v, err)
		}
		maxMB = n
	}
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Pairs []struct {
			Name    string
			Changed []struct {
				OldTar, NewTar string
				NewTarBytes    int64
			}
		}
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", manifest, err)
	}
	dir := filepath.Dir(manifest)
	_, zerr := exec.LookPath("zstd")
	if os.Getenv("DIFFAH_TARPATCH_NOREF") != "" {
		zerr = errors.New("references skipped")
	}
	if os.Getenv("DIFFAH_TARPATCH_NOXADIFF") != "" {
		xadiffEnabled = false
		defer func() { xadiffEnabled = true }()
	}
	if os.Getenv("DIFFAH_TARPATCH_NOPAIR") != "" {
		pairEnabled = false
		defer func() { pairEnabled = true }()
	}
	top := 0
	var ops []tracedOp
	if v := os.Getenv("DIFFAH_TARPATCH_TOP"); v != "" {
		if top, err = strconv.Atoi(v); err != nil {
			t.Fatalf("DIFFAH_TARPATCH_TOP=%q: %v", v, err)
		}
		traceTask = func(name string, kind int, in int64, out int, adiff bool) {
			ops = append(ops, tracedOp{name, kind, in, out, adiff})
		}
		defer func() { traceTask = nil }()
	}
	if os.Getenv("DIFFAH_TARPATCH_NOADIFF") != "" {
		adiffEnabled = false
		defer func() { adiffEnabled = true }()
	}
	t.Logf("%-16s %12s %12s %12s %12s %8s %10s %10s", "case", "new", "zstd-19", "patch-from", "ours", "ratio", "enc MB/s", "dec MB/s")
	for _, p := range m.Pairs {
		for i, c := range p.Changed {
			if c.NewTarBytes > maxMB<<20 {
				t.Logf("%s: skipped (%d MiB > DIFFAH_TARPATCH_MAXMB)", p.Name, c.NewTarBytes>>20)
				continue
			}
			name := fmt.Sprintf("%s/%d", p.Name, i)
			oldPath, newPath := filepath.Join(dir, c.OldTar), filepath.Join(dir, c.NewTar)
			patchPath := filepath.Join(t.TempDir(), "patch")
			ours, enc, dec := measureOurs(t, oldPath, newPath, patchPath)
			zs, zp := int64(-1), int64(-1)
			if zerr == nil {
				zs = zstdSize(t, "-19", "--long=31", newPath)
				zp = zstdSize(t, "-19", "--long=31", "--patch-from="+oldPath, newPath)
			}
			t.Logf("%-16s %12d %12d %12d %12d %8.3f %10.1f %10.1f", name, c.NewTarBytes, zs, zp, ours, float64(ours)/float64(zp), enc, dec)
			sort.SliceStable(ops, func(i, j int) bool { return ops[i].out > ops[j].out })
			for _, op := range ops[:min(top, len(ops))] {
				t.Logf("  %9d <- %10d %-6s %s", op.out, op.in, op.kindName(), op.name)
			}
			ops = ops[:0]
		}
	}
}

// tracedOp is one op as traceTask saw it.
type tracedOp struct {
	name  string
	kind  int
	in    int64
	out   int
	adiff bool
}

func (o tracedOp) kindName() string {
	switch {
	case o.kind == statDelta && o.adiff:
		return "adiff"
	case o.kind == statDelta:
		return "delta"
	case o.kind == statLit:
		return "lit"
	case o.kind == statCopy:
		return "copy"
	}
	return "header"
}

// measureOurs encodes and decodes one pair, checks the round trip and
// returns the patch size and both speeds in MB/s of new tar.
func measureOurs(t *testing.T, oldPath, newPath, patchPath string) (int64, float64, float64) {
	t.Helper()
	ctx := context.Background()
	old, err := os.Open(oldPath)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	nw, err := os.Open(newPath)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	out, err := os.Create(patchPath)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, err := Encode(ctx, out, nw, []Source{fileSource{old}}, EncodeOptions{})
	if err != nil {
		t.Fatalf("encode %s: %v", newPath, err)
	}
	encS := time.Since(start).Seconds()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := os.Open(patchPath)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := nw.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	cmp := &compareWriter{want: nw}
	start = time.Now()
	if err := Decode(ctx, cmp, p, []Source{fileSource{old}}, DecodeOptions{MaxOutput: st.NewSize}); err != nil {
		t.Fatalf("decode %s: %v", newPath, err)
	}
	decS := time.Since(start).Seconds()
	if cmp.err != nil || cmp.n != st.NewSize {
		t.Fatalf("%s: round trip differs after %d bytes: %v", newPath, cmp.n, cmp.err)
	}
	mb := float64(st.NewSize) / 1e6
	return st.PatchSize, mb / encS, mb / decS
}

// compareWriter checks what is written against a reader without holding
// either in memory.
type compareWriter struct {
	want io.Reader
	buf  []byte
	n    int64
	err  error
}

func (c *compareWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	if _, err := io.ReadFull(c.want, b); err != nil || !bytes.Equal(b, p) {
		c.err = fmt.Errorf("mismatch at or after offset %d (%v)", c.n, err)
		return 0, c.err
	}
	c.n += int64(len(p))
	return len(p), nil
}

func zstdSize(t *testing.T, args ...string) int64 {
	t.Helper()
	cmd := exec.Command("zstd", append([]string{"-q", "-c", "-T2"}, args...)...)
	n := &ctxio.CountingWriter{W: io.Discard}
	cmd.Stdout = n
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zstd %v: %v: %s", args, err, stderr.String())
	}
	return n.N
}
