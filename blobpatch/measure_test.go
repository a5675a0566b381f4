package blobpatch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diffah/diffah/deflatetok"
	"github.com/diffah/diffah/internal/peakrss"
	"github.com/diffah/diffah/tarpatch"
)

// streamSource is a deterministic pseudo-random blob of any size,
// generated as it is read (the child below never holds it whole).
type streamSource struct {
	seed int64
	size int64
}

func (s streamSource) Size() int64 { return s.size }

// ReadAt fills p from 4 KiB blocks, each seeded by its index.
func (s streamSource) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off < s.size {
		blk := off / 4096
		var b [4096]byte
		rand.New(rand.NewSource(s.seed ^ blk*7919)).Read(b[:])
		c := copy(p[n:], b[off%4096:min(4096, s.size-blk*4096)])
		n += c
		off += int64(c)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestChildMemory is the child of TestBoundedMemory: it encodes a patch of
// a large blob (a copy of the source with an edit every 16 MiB) and
// decodes it, streaming both ways.
func TestChildMemory(t *testing.T) {
	size, _ := strconv.ParseInt(os.Getenv("DIFFAH_BLOBPATCH_CHILD"), 10, 64)
	if size == 0 {
		t.Skip("run by TestBoundedMemory")
	}
	src := streamSource{seed: 1, size: size}
	blob := io.NewSectionReader(src, 0, size)
	f, err := os.CreateTemp(t.TempDir(), "patch")
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := strconv.Atoi(os.Getenv("DIFFAH_BLOBPATCH_JOBS"))
	if _, err := Encode(context.Background(), f, blob, size, src, EncodeOptions{Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 0)
	cw := &countingDiscard{}
	if err := Decode(context.Background(), cw, f, []Source{src}, DecodeOptions{MaxOutput: size}); err != nil {
		t.Fatal(err)
	}
	if cw.n != size {
		t.Fatalf("decoded %d bytes of %d", cw.n, size)
	}
}

type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestBoundedMemory measures the peak RSS of encoding and decoding a patch
// of a blob several times larger than a chunk and its dictionary: it must
// stay far under 512 MiB (it is bounded by a chunk, its dictionary and
// the zstd tables per worker, not by the blob), and grow with the workers
// by at most WorkerMemory each. DIFFAH_BLOBPATCH_MEM_SIZE sets the blob
// size (default 48 MiB, four dictionaries; the bound holds at any size).
func TestBoundedMemory(t *testing.T) {
	size := int64(48 << 20)
	if s := os.Getenv("DIFFAH_BLOBPATCH_MEM_SIZE"); s != "" {
		size, _ = strconv.ParseInt(s, 10, 64)
	}
	if !peakrss.Available() {
		t.Skip("GNU time (/usr/bin/time) not installed: run scripts/deps.sh")
	}
	var one int64
	for _, jobs := range []int{1, 2} {
		child := exec.Command(os.Args[0], "-test.run=^TestChildMemory$", "-test.count=1")
		child.Env = append(os.Environ(), fmt.Sprintf("DIFFAH_BLOBPATCH_CHILD=%d", size), fmt.Sprintf("DIFFAH_BLOBPATCH_JOBS=%d", jobs))
		var outb bytes.Buffer
		child.Stdout, child.Stderr = &outb, &outb
		peak, err := peakrss.Run(child)
		out := outb.Bytes()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		t.Logf("jobs %d: peak RSS %d MiB for a %d MiB blob", jobs, peak>>20, size>>20)
		if peak > 512<<20 {
			t.Fatalf("jobs %d: peak RSS %d MiB, want < 512 MiB", jobs, peak>>20)
		}
		if jobs == 1 {
			one = peak
		} else if peak > one+int64(jobs-1)*WorkerMemory {
			t.Fatalf("jobs %d: peak RSS %d MiB, over %d MiB (jobs 1) + %d MiB per added worker", jobs, peak>>20, one>>20, WorkerMemory>>20)
		}
	}
}

// TestForeignRatios (DIFFAH_FOREIGN_BENCH=1; heavy) compresses layer
// pairs with each installed real compressor and reports, per compressor,
// what diffah ships for the changed layer (the smallest of the
// diffah-deflate-model/2 patch — the tar patch plus the model form —, the
// diffah-deflate/1 and -inline/1 patches when the model does not fit
// closely, and the compressed-bytes floor, diffah-blob/1), beside the
// delta of the same pair when its layers are Go-gzip-6 (tarpatch with
// exact recompression; the target is ours ≤ 1.25x that), the
// content reference (zstd -19 --long --patch-from on the tars) and the
// floor. DIFFAH_FOREIGN_ONLY=a,b limits the corpus pairs,
// DIFFAH_FOREIGN_COMPRESSORS="gzip -6,zopfli --i1" the compressors. Pairs: the changed layers of the corpus
// (DIFFAH_FOREIGN_CORPUS=.cache/corpus, built by scripts/corpus.sh), else
// a generated pair.
func TestForeignRatios(t *testing.T) {
	if os.Getenv("DIFFAH_FOREIGN_BENCH") == "" {
		t.Skip("set DIFFAH_FOREIGN_BENCH=1 (heavy: real compressors on real layer pairs)")
	}
	type pair struct {
		name     string
		old, new []byte
	}
	var pairs []pair
	if dir := os.Getenv("DIFFAH_FOREIGN_CORPUS"); dir != "" {
		raw, err := os.ReadFile(filepath.Join(dir, "pairs.json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Pairs []struct {
				Name    string
				Changed []struct{ OldTar, NewTar string }
			}
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for _, p := range doc.Pairs {
			if p.Name == "large" || os.Getenv("DIFFAH_FOREIGN_ONLY") != "" && !strings.Contains(","+os.Getenv("DIFFAH_FOREIGN_ONLY")+",", ","+p.Name+",") {
				continue
			}
			for i, c := range p.Changed {
				a, err := os.ReadFile(filepath.Join(dir, c.OldTar))
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(dir, c.NewTar))
				if err != nil {
					t.Fatal(err)
				}
				pairs = append(pairs, pair{fmt.Sprintf("%s#%d", p.Name, i), a, b})
			}
		}
	} else {
		a, b := layerPair()
		pairs = append(pairs, pair{"generated", a, b})
	}
	dir := t.TempDir()
	py := func(code string) []string {
		return []string{"python3", "-c", "import gzip,zlib,sys;d=sys.stdin.buffer.read();" + code}
	}
	pyz := func(l int) []string {
		return py(fmt.Sprintf("c=zlib.compressobj(%d,zlib.DEFLATED,31);sys.stdout.buffer.write(c.compress(d)+c.flush())", l))
	}
	comps := []struct {
		name string
		argv []string
	}{
		{"gzip -1", []string{"gzip", "-1", "-n", "-c"}}, {"gzip -6", []string{"gzip", "-6", "-n", "-c"}}, {"gzip -9", []string{"gzip", "-9", "-n", "-c"}},
		{"pigz -6 -p 1", []string{"pigz", "-6", "-p", "1", "-n", "-c"}}, {"pigz -6 -p 4", []string{"pigz", "-6", "-p", "4", "-n", "-c"}},
		{"zlib -1", pyz(1)}, {"zlib -6", pyz(6)}, {"zlib -9", pyz(9)},
		{"py gzip -9", py("sys.stdout.buffer.write(gzip.compress(d,9,mtime=0))")},
		{"libdeflate -6", []string{"libdeflate-gzip", "-6", "-c"}}, {"libdeflate -12", []string{"libdeflate-gzip", "-12", "-c"}},
		{"zopfli --i1", []string{"sh", "-c", "cat > " + dir + "/in && zopfli --i1 -c " + dir + "/in"}},
	}
	ctx := context.Background()
	for _, pr := range pairs {
		// The Go-gzip-6 version of the pair: what diffah ships when the
		// recipe is found (tarpatch), and that blob's size.
		var ref bytes.Buffer
		if _, err := tarpatch.Encode(ctx, &ref, bytes.NewReader(pr.new), []tarpatch.Source{bytes.NewReader(pr.old)}, tarpatch.EncodeOptions{}); err != nil {
			t.Fatal(err)
		}
		var g6 bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&g6, 6)
		zw.Write(pr.new)
		zw.Close()
		// The content reference: zstd -19 --long --patch-from on the tars.
		zref := "-"
		if have("zstd") {
			os.WriteFile(filepath.Join(dir, "ta"), pr.old, 0o644)
			os.WriteFile(filepath.Join(dir, "tb"), pr.new, 0o644)
			if out, err := exec.Command("zstd", "-q", "-19", "--long=31", "--patch-from="+filepath.Join(dir, "ta"), filepath.Join(dir, "tb"), "-c").Output(); err == nil {
				zref = fmt.Sprint(len(out))
			}
		}
		t.Logf("pair %s: %d -> %d bytes uncompressed; as Go-gzip-6: blob %d bytes, diffah delta %d bytes; zstd -19 --long --patch-from on the tars: %s bytes", pr.name, len(pr.old), len(pr.new), g6.Len(), ref.Len(), zref)
		t.Logf("  %-15s %10s %10s %8s %10s %10s %10s %10s %10s %-40s %11s", "compressor", "blob", "ours", "ours/go", "go-gzip-6", "zstd-ref", "floor", "model", "tar+parse", "model fit", "rebuild/cpu")
		for _, c := range comps {
			if only := os.Getenv("DIFFAH_FOREIGN_COMPRESSORS"); only != "" && !strings.Contains(","+only+",", ","+c.name+",") {
				continue
			}
			if _, err := exec.LookPath(c.argv[0]); err != nil || strings.HasPrefix(c.name, "zopfli") && !have("zopfli") {
				t.Logf("  %-15s not installed", c.name)
				continue
			}
			if strings.HasPrefix(c.name, "zopfli") && len(pr.new) > 8<<20 {
				t.Logf("  %-15s skipped: too slow on a %d MiB layer", c.name, len(pr.new)>>20)
				continue
			}
			a, b := run(t, c.argv, pr.old), run(t, c.argv, pr.new)
			// diffah-blob/1: the compressed-bytes floor.
			var fl bytes.Buffer
			if _, err := Encode(ctx, &fl, bytes.NewReader(b), int64(len(b)), src(a), EncodeOptions{}); err != nil {
				t.Fatal(err)
			}
			var fb bytes.Buffer
			if err := deflatetok.Decode(ctx, &fb, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			// diffah-deflate-model/2: the tar patch plus the model form.
			modelSize, fit := -1, "does not fit"
			var mf bytes.Buffer
			lvl, rate, err := deflatetok.FitParams(ctx, bytes.NewReader(fb.Bytes()), int64(fb.Len()), pr.new[:min(len(pr.new), 1<<20)])
			if err == nil {
				var st deflatetok.ModelStats
				st, err = deflatetok.EncodeModel(ctx, &mf, bytes.NewReader(fb.Bytes()), bytes.NewReader(pr.new), deflatetok.Levels[lvl], int64(len(b))/4)
				if err == nil {
					modelSize = ref.Len() + mf.Len() + 16
					fit = fmt.Sprintf("%s, %.2f%% off, %d B", deflatetok.LevelName(lvl), 100*rate, mf.Len())
					_ = st
				}
			}
			if err != nil && !errors.Is(err, deflatetok.ErrNoModel) {
				t.Fatal(err)
			}
			if err != nil {
				t.Logf("  %-15s model: %v", c.name, err)
			}
			// diffah-deflate/1 and -inline/1, computed when the model
			// does not fit closely (as pack does).
			tokens, inline := -1, -1
			var tp bytes.Buffer
			if modelSize < 0 || mf.Len()*100 >= modelSize {
				var fa, ia, ib, ip bytes.Buffer
				if err := deflatetok.Decode(ctx, &fa, bytes.NewReader(a)); err != nil {
					t.Fatal(err)
				}
				if _, err := Encode(ctx, &tp, bytes.NewReader(fb.Bytes()), int64(fb.Len()), src(fa.Bytes()), EncodeOptions{}); err != nil {
					t.Fatal(err)
				}
				tokens = ref.Len() + tp.Len() + 16
				if err := deflatetok.DecodeInline(ctx, &ia, bytes.NewReader(a)); err != nil {
					t.Fatal(err)
				}
				if err := deflatetok.DecodeInline(ctx, &ib, bytes.NewReader(b)); err != nil {
					t.Fatal(err)
				}
				if _, err := Encode(ctx, &ip, bytes.NewReader(ib.Bytes()), int64(ib.Len()), src(ia.Bytes()), EncodeOptions{}); err != nil {
					t.Fatal(err)
				}
				inline = ip.Len()
			}
			ours := min(fl.Len(), len(b))
			for _, n := range []int{modelSize, tokens, inline} {
				if n >= 0 {
					ours = min(ours, n)
				}
			}
			// What resolve does for it, timed in CPU seconds: the tar
			// from its patch, then the blob (model form, or parse patch).
			cpu0 := cpuTime()
			var tarOut, form, blob bytes.Buffer
			if err := tarpatch.Decode(ctx, &tarOut, bytes.NewReader(ref.Bytes()), []tarpatch.Source{bytes.NewReader(pr.old)}, tarpatch.DecodeOptions{MaxOutput: int64(len(pr.new))}); err != nil {
				t.Fatal(err)
			}
			if modelSize >= 0 && ours == modelSize {
				if err := deflatetok.DecodeModel(ctx, &form, bytes.NewReader(mf.Bytes()), bytes.NewReader(tarOut.Bytes()), int64(fb.Len())); err != nil {
					t.Fatal(err)
				}
			} else if tokens >= 0 && ours == tokens {
				var fa2 bytes.Buffer
				if err := deflatetok.Decode(ctx, &fa2, bytes.NewReader(a)); err != nil {
					t.Fatal(err)
				}
				if err := Decode(ctx, &form, bytes.NewReader(tp.Bytes()), []Source{src(fa2.Bytes())}, DecodeOptions{MaxOutput: int64(fb.Len())}); err != nil {
					t.Fatal(err)
				}
			}
			rebuilt := form.Len() > 0
			if rebuilt {
				if err := deflatetok.Encode(ctx, &blob, &form, &tarOut, deflatetok.EncodeOptions{MaxOutput: int64(len(b))}); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(blob.Bytes(), b) {
					t.Fatalf("%s: rebuilt blob differs", c.name)
				}
			}
			speed := "-"
			if rebuilt {
				speed = fmt.Sprintf("%6.0f MB/s", float64(len(pr.new))/1e6/(cpuTime()-cpu0).Seconds())
			}
			t.Logf("  %-15s %10d %10d %7.2fx %10d %10s %10d %10s %10s %-40s %11s", c.name, len(b), ours, float64(ours)/float64(ref.Len()), ref.Len(), zref, fl.Len(), num(modelSize), num(tokens), fit, speed)
		}
	}
}

func num(n int) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func have(bin string) bool { _, err := exec.LookPath(bin); return err == nil }

func run(t *testing.T, argv []string, in []byte) []byte {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return out
}

// layerPair is a 24 MiB-ish tar of text-like and binary-like files and
// the same tar with a small edit in a few files (a package update).
func layerPair() (oldTar, newTar []byte) {
	words := strings.Fields("the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their")
	build := func(edit bool) []byte {
		r := rand.New(rand.NewSource(42))
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		for i := range 120 {
			var body []byte
			if i%3 == 2 {
				// Binary-like: machine-code-ish bytes with repeats.
				body = make([]byte, 160<<10)
				for j := 0; j < len(body); j += 16 {
					w := r.Uint64()
					for k := 0; k < 16 && j+k < len(body); k++ {
						body[j+k] = byte(w >> (8 * (k % 8)) & 0x3f)
					}
				}
			} else {
				var b bytes.Buffer
				for b.Len() < 256<<10 {
					fmt.Fprintf(&b, "%s %s %s %d\n", words[r.Intn(len(words))], words[r.Intn(len(words))], words[r.Intn(len(words))], r.Intn(1000))
				}
				body = b.Bytes()
			}
			if edit && i%10 == 7 {
				// A package update: a few edits in one file in ten, and
				// one binary rebuilt throughout.
				for k := 1; k <= 8; k++ {
					copy(body[len(body)*k/9:], "an edit of version 1.2.4")
				}
				if i == 17 {
					rand.New(rand.NewSource(7)).Read(body[len(body)/4:])
				}
			}
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("usr/lib/pkg/file%03d", i), Size: int64(len(body)), Mode: 0o644, ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
			tw.Write(body)
		}
		tw.Close()
		return tb.Bytes()
	}
	return build(false), build(true)
}
