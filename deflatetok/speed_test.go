package deflatetok

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"syscall"
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

// BenchmarkRebuildModel is what resolve does for a model layer: the blob
// from the model form and the tar (RebuildModel). DIFFAH_REBUILD_TAR
// names a real tar; each sub-benchmark compresses it with one compressor
// first (MB/s of uncompressed data).
func BenchmarkRebuildModel(b *testing.B) {
	path := os.Getenv("DIFFAH_REBUILD_TAR")
	if path == "" {
		b.Skip("set DIFFAH_REBUILD_TAR to a tar")
	}
	content, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range rebuildCompressors {
		b.Run(c.name, func(b *testing.B) {
			if _, err := exec.LookPath(c.argv[0]); err != nil {
				b.Skip(c.argv[0] + " not installed")
			}
			blob, _, mf, _ := modelFormOf(b, c.argv, content)
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				if err := RebuildModel(context.Background(), io.Discard, bytes.NewReader(mf), bytes.NewReader(content), EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var rebuildCompressors = []struct {
	name string
	argv []string
}{
	{"gzip-1", []string{"gzip", "-1", "-n", "-c"}},
	{"gzip-6", []string{"gzip", "-6", "-n", "-c"}},
	{"gzip-9", []string{"gzip", "-9", "-n", "-c"}},
	{"pigz-6", []string{"pigz", "-6", "-p", "2", "-n", "-c"}},
	{"zlib-6", []string{"python3", "-c", "import zlib,sys;c=zlib.compressobj(6,zlib.DEFLATED,31);d=sys.stdin.buffer.read();sys.stdout.buffer.write(c.compress(d)+c.flush())"}},
	{"zlib-9", []string{"python3", "-c", "import zlib,sys;c=zlib.compressobj(9,zlib.DEFLATED,31);d=sys.stdin.buffer.read();sys.stdout.buffer.write(c.compress(d)+c.flush())"}},
	{"libdeflate-6", []string{"libdeflate-gzip", "-6", "-c"}},
	{"libdeflate-9", []string{"libdeflate-gzip", "-9", "-c"}},
}

// modelFormOf compresses content with argv and returns the blob, its
// token form and its model form (at the level FitParams finds), and the
// compressor's CPU seconds.
func modelFormOf(tb testing.TB, argv []string, content []byte) (blob, form, mf []byte, cpu float64) {
	tb.Helper()
	ctx := context.Background()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(content)
	blob, err := cmd.Output()
	if err != nil {
		tb.Fatal(err)
	}
	cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	var fb, mb bytes.Buffer
	if err := Decode(ctx, &fb, bytes.NewReader(blob)); err != nil {
		tb.Fatal(err)
	}
	lvl, _, err := FitParams(ctx, bytes.NewReader(fb.Bytes()), int64(fb.Len()), content[:min(len(content), 1<<20)])
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := EncodeModel(ctx, &mb, bytes.NewReader(fb.Bytes()), bytes.NewReader(content), Levels[lvl], int64(len(blob))); err != nil {
		tb.Fatal(err)
	}
	return blob, fb.Bytes(), mb.Bytes(), cpu
}

// TestRebuildSpeed reports, in CPU time on DIFFAH_REBUILD_TAR, the rate
// of a model layer's rebuild (RebuildModel; and DecodeModel then Encode,
// the two steps it fuses) beside `gzip -6` and `gunzip` on the same data
// in the same run, and the level search (FitParams) and the model form's
// encoding beside `gzip -6`. A measurement, not a check: it asserts only
// that the blob comes back.
func TestRebuildSpeed(t *testing.T) {
	path := os.Getenv("DIFFAH_REBUILD_TAR")
	if path == "" {
		t.Skip("set DIFFAH_REBUILD_TAR to a tar")
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mb := float64(len(content)) / 1e6
	child := func(argv []string, in []byte) (out []byte, cpu float64) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out, (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	g6, gzipCPU := child([]string{"gzip", "-6", "-n", "-c"}, content)
	_, gzip9CPU := child([]string{"gzip", "-9", "-n", "-c"}, content)
	_, gunzipCPU := child([]string{"gunzip", "-c"}, g6)
	t.Logf("%s: %.1f MB; gzip -6 %.1f MB/s, gzip -9 %.1f MB/s, gunzip %.0f MB/s (CPU time)", path, mb, mb/gzipCPU, mb/gzip9CPU, mb/gunzipCPU)
	for _, c := range rebuildCompressors {
		if _, err := exec.LookPath(c.argv[0]); err != nil {
			t.Logf("%s: not installed", c.name)
			continue
		}
		blob, form, mf, compCPU := modelFormOf(t, c.argv, content)
		cpu0 := cpuSeconds()
		var tf, out bytes.Buffer
		if err := DecodeModel(ctx, &tf, bytes.NewReader(mf), bytes.NewReader(content), int64(len(form))); err != nil {
			t.Fatal(err)
		}
		cpu1 := cpuSeconds()
		if err := Encode(ctx, &out, &tf, bytes.NewReader(content), EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
			t.Fatal(err)
		}
		cpu2 := cpuSeconds()
		if !bytes.Equal(out.Bytes(), blob) {
			t.Fatalf("%s: the rebuilt blob differs", c.name)
		}
		out.Reset()
		if err := RebuildModel(ctx, &out, bytes.NewReader(mf), bytes.NewReader(content), EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
			t.Fatal(err)
		}
		cpu3 := cpuSeconds()
		if !bytes.Equal(out.Bytes(), blob) {
			t.Fatalf("%s: RebuildModel's blob differs", c.name)
		}
		// What pack does besides: the token form, the level, the model
		// form (and the check: RebuildModel, above).
		var fb bytes.Buffer
		if err := Decode(ctx, &fb, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		prefix := content[:min(len(content), 1<<20)]
		lvl, _, err := FitParams(ctx, bytes.NewReader(form), int64(len(form)), prefix)
		if err != nil {
			t.Fatal(err)
		}
		cpu4 := cpuSeconds()
		if _, err := EncodeModel(ctx, io.Discard, bytes.NewReader(form), bytes.NewReader(content), Levels[lvl], int64(len(blob))); err != nil {
			t.Fatal(err)
		}
		cpu5 := cpuSeconds()
		rebuild, twoStep := cpu3-cpu2, cpu2-cpu0
		detect := cpu4 - cpu3
		t.Logf("%-12s rebuild %5.1f MB/s = %.2fx gzip -6's rate, %.2fx gzip -9's, %.2fx the compressor's own, %.2fx gunzip's (DecodeModel then Encode: %5.1f MB/s, model %5.1f, encode %5.1f); detection (token form, level) %.2fs = %.2fx gzip -6; EncodeModel %5.1f MB/s; all pack does (detection, model form, rebuild check) %.2fx gzip -6; model form %d B",
			c.name, mb/rebuild, gzipCPU/rebuild, gzip9CPU/rebuild, compCPU/rebuild, gunzipCPU/rebuild, mb/twoStep, mb/(cpu1-cpu0), mb/(cpu2-cpu1), detect, detect/gzipCPU, mb/(cpu5-cpu4), (cpu5-cpu3+rebuild)/gzipCPU, len(mf))
	}
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
