package deflatetok

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
)

// modelRoundTrip encodes blob's model form with p, decodes it, rebuilds
// the blob and checks it is the same; it returns the form's size.
func modelRoundTrip(t *testing.T, blob, content []byte, p Params) (int, ModelStats) {
	t.Helper()
	ctx := context.Background()
	var form bytes.Buffer
	if err := Decode(ctx, &form, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	var mf bytes.Buffer
	st, err := EncodeModel(ctx, &mf, bytes.NewReader(form.Bytes()), bytes.NewReader(content), p, int64(len(blob)))
	if err != nil {
		t.Fatal(err)
	}
	var form2 bytes.Buffer
	if err := DecodeModel(ctx, &form2, bytes.NewReader(mf.Bytes()), bytes.NewReader(content), int64(form.Len())); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Encode(ctx, &out, bytes.NewReader(form2.Bytes()), bytes.NewReader(content), EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(out.Bytes()) != sha256.Sum256(blob) {
		t.Fatalf("model form rebuilds a different blob (%d bytes, want %d)", out.Len(), len(blob))
	}
	var fused bytes.Buffer
	if err := RebuildModel(ctx, &fused, bytes.NewReader(mf.Bytes()), bytes.NewReader(content), EncodeOptions{MaxOutput: int64(len(blob))}); err != nil {
		t.Fatalf("RebuildModel: %v", err)
	}
	if !bytes.Equal(fused.Bytes(), blob) {
		t.Fatalf("RebuildModel rebuilds a different blob (%d bytes, want %d)", fused.Len(), len(blob))
	}
	return mf.Len(), st
}

// rebuildAgrees checks RebuildModel on a (maybe hostile) model form p
// against DecodeModel then Encode: within the output bound, refusing
// only with integrity errors, and the same blob whenever the two-step
// rebuild makes one.
func rebuildAgrees(t *testing.T, p, content []byte, maxOut int64) {
	t.Helper()
	ctx := context.Background()
	var form, two, fused bytes.Buffer
	err2 := DecodeModel(ctx, &form, bytes.NewReader(p), bytes.NewReader(content), 1<<24)
	if err2 == nil {
		err2 = Encode(ctx, &two, &form, bytes.NewReader(content), EncodeOptions{MaxOutput: maxOut})
	}
	err := RebuildModel(ctx, &fused, bytes.NewReader(p), bytes.NewReader(content), EncodeOptions{MaxOutput: maxOut})
	if int64(fused.Len()) > maxOut {
		t.Fatalf("RebuildModel wrote %d bytes past %d", fused.Len(), maxOut)
	}
	if err != nil && fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("RebuildModel: non-integrity error: %v", err)
	}
	switch {
	case err2 == nil && err != nil:
		t.Fatalf("RebuildModel refuses what DecodeModel and Encode rebuild: %v", err)
	case err2 != nil && err == nil:
		t.Fatalf("RebuildModel rebuilds what DecodeModel and Encode refuse (%v)", err2)
	case err == nil && !bytes.Equal(fused.Bytes(), two.Bytes()):
		t.Fatalf("RebuildModel rebuilds %d bytes, DecodeModel and Encode %d others", fused.Len(), two.Len())
	}
}

func TestModelCorpus(t *testing.T) {
	path := os.Getenv("DIFFAH_MODEL_TAR")
	if path == "" {
		t.Skip("DIFFAH_MODEL_TAR")
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		argv []string
		lvl  int
	}{{[]string{"gzip", "-6", "-n"}, 6}, {[]string{"gzip", "-9", "-n"}, 9}, {[]string{"gzip", "-1", "-n"}, 1},
		{[]string{"python3", "-c", "import sys,zlib;sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read(),6,wbits=31))"}, 6},
		{[]string{"pigz", "-6", "-n"}, 6}, {[]string{"gzip", "-6", "-n"}, 6}, {[]string{"gzip", "-9", "-n"}, 9}, {[]string{"gzip", "-1", "-n"}, 1}} {
		if os.Getenv("DIFFAH_MODEL_ONLY") != "" && os.Getenv("DIFFAH_MODEL_ONLY") != c.argv[0] {
			continue
		}
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		cmd.Stdin = bytes.NewReader(content)
		blob, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		var form bytes.Buffer
		if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		lvl, _, err := FitParams(context.Background(), bytes.NewReader(form.Bytes()), int64(form.Len()), content[:min(len(content), 1<<20)])
		if err != nil {
			t.Fatalf("%v: %v", c.argv[:2], err)
		}
		if lvl != c.lvl {
			t.Errorf("%v: %s found, want %s", c.argv[:2], LevelName(lvl), LevelName(c.lvl))
		}
		n, st := modelRoundTrip(t, blob, content, Levels[lvl])
		t.Logf("%v: blob %d, model form %d (%.3f%%), tokens %d, corrections %d, blocks %d, headers %d", c.argv[:2], len(blob), n, 100*float64(n)/float64(len(blob)), st.Tokens, st.Corrections, st.Blocks, st.Headers)
	}
}

// modelCompressors are the zlib/gzip-family tools the model must fit
// closely; each is skipped when its tool is missing.
var modelCompressors = [][]string{
	{"gzip", "-1", "-c"}, {"gzip", "-6", "-c"}, {"gzip", "-9", "-c"},
	{"pigz", "-6", "-c"}, {"pigz", "-p", "1", "-9", "-c"}, {"pigz", "-p", "3", "-6", "-b", "32", "-c"},
	{"python3", "-c", "import zlib,sys;c=zlib.compressobj(6,zlib.DEFLATED,31);d=sys.stdin.buffer.read();sys.stdout.buffer.write(c.compress(d)+c.flush())"},
	{"python3", "-c", "import zlib,sys;c=zlib.compressobj(1,zlib.DEFLATED,31);d=sys.stdin.buffer.read();sys.stdout.buffer.write(c.compress(d)+c.flush())"},
	{"python3", "-c", "import gzip,sys;d=sys.stdin.buffer.read();sys.stdout.buffer.write(gzip.compress(d[:5000],1)+gzip.compress(d[5000:],9)+bytes(7))"},
}

// modelSample is content with long and short repeats, far matches and an
// incompressible stretch (stored blocks).
func modelSample() []byte {
	b := append([]byte(nil), sample()...)
	r := uint32(1)
	for range 70000 {
		r = r*1664525 + 1013904223
		b = append(b, byte(r>>24))
	}
	return append(b, sample()[:200000]...)
}

// TestModelFits: the model form of each zlib/gzip-family stream rebuilds
// it exactly, finds its level, and costs well under 1% of the blob.
func TestModelFits(t *testing.T) {
	content := modelSample()
	for _, argv := range modelCompressors {
		t.Run(strings.Join(argv[:2], " "), func(t *testing.T) {
			blob := compressWith(t, argv, content)
			var form bytes.Buffer
			if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
				t.Fatal(err)
			}
			lvl, rate, err := FitParams(context.Background(), bytes.NewReader(form.Bytes()), int64(form.Len()), content[:1<<20])
			if err != nil {
				t.Fatal(err)
			}
			n, st := modelRoundTrip(t, blob, content, Levels[lvl])
			t.Logf("%s (%.3f%% off on the prefix): model form %d bytes for a %d-byte blob, %d corrections of %d tokens, %d of %d headers", LevelName(lvl), 100*rate, n, len(blob), st.Corrections, st.Tokens, st.Headers, st.Blocks)
			if n*200 > len(blob) {
				t.Errorf("model form %d bytes is over 0.5%% of the %d-byte blob", n, len(blob))
			}
		})
	}
}

// TestModelOthers: streams of other encoders still round-trip (or are
// refused with ErrNoModel), never rebuilt wrong.
func TestModelOthers(t *testing.T) {
	content := modelSample()[:300000]
	var blobs [][]byte
	for _, lvl := range []int{gzip.NoCompression, gzip.BestSpeed, gzip.DefaultCompression, gzip.BestCompression} {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, lvl)
		zw.Write(content)
		zw.Close()
		blobs = append(blobs, b.Bytes())
	}
	if _, err := exec.LookPath("libdeflate-gzip"); err == nil {
		blobs = append(blobs, compressWith(t, []string{"libdeflate-gzip", "-6", "-c"}, content))
	}
	for i, blob := range blobs {
		var form bytes.Buffer
		if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		var mf bytes.Buffer
		st, err := EncodeModel(context.Background(), &mf, bytes.NewReader(form.Bytes()), bytes.NewReader(content), Levels[6], int64(len(blob)))
		if errors.Is(err, ErrNoModel) {
			t.Logf("blob %d: %v", i, err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n, _ := modelRoundTrip(t, blob, content, Levels[6])
		t.Logf("blob %d: model form %d bytes of %d, %d corrections of %d tokens", i, n, len(blob), st.Corrections, st.Tokens)
	}
}

// TestDecodeModelHostile: every truncation and many byte flips of a
// valid model form are refused as integrity errors or rebuild something
// else (which the digest check then refuses), within the output bound.
func TestDecodeModelHostile(t *testing.T) {
	content := sample()[:50000]
	blob := compressWith(t, []string{"gzip", "-6", "-c"}, content)
	var form bytes.Buffer
	if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	var mf bytes.Buffer
	if _, err := EncodeModel(context.Background(), &mf, bytes.NewReader(form.Bytes()), bytes.NewReader(content), Levels[6], int64(len(blob))); err != nil {
		t.Fatal(err)
	}
	good := mf.Bytes()
	try := hostileTry(t, content, int64(form.Len()), int64(len(blob)))
	for i := range good {
		try(good[:i])
	}
	for i := range good {
		p := append([]byte(nil), good...)
		p[i] ^= 0x5a
		try(p)
	}
	// Bodies with one byte changed (as valid zstd): every field of the
	// form, corrections and ranks among them (Go's gzip: many corrections).
	var gb, gf, gm bytes.Buffer
	zw0, _ := gzip.NewWriterLevel(&gb, 6)
	zw0.Write(content)
	zw0.Close()
	Decode(context.Background(), &gf, bytes.NewReader(gb.Bytes()))
	EncodeModel(context.Background(), &gm, bytes.NewReader(gf.Bytes()), bytes.NewReader(content), Levels[6], 1<<20)
	hostileBodies(t, gm.Bytes(), try)
	// A body that is valid zstd but not a model form.
	var bad bytes.Buffer
	bad.WriteString(modelMagic)
	zw, _ := zstd.NewWriter(&bad)
	zw.Write(bytes.Repeat([]byte{0x01, 0x00}, 1<<20))
	zw.Close()
	try(bad.Bytes())
}

// hostileTry decodes a hostile model form against content, checking it
// writes at most max bytes and is refused only as an integrity error.
func hostileTry(t *testing.T, content []byte, max, blobLen int64) func([]byte) {
	return func(p []byte) {
		var out bytes.Buffer
		err := DecodeModel(context.Background(), &out, bytes.NewReader(p), bytes.NewReader(content), max)
		if int64(out.Len()) > max {
			t.Fatalf("wrote %d bytes past %d", out.Len(), max)
		}
		if err != nil && fault.KindOf(err, 0) != fault.Integrity {
			t.Fatalf("non-integrity error: %v", err)
		}
		rebuildAgrees(t, p, content, blobLen)
	}
}

// hostileBodies tries the model form mf with each of its first body
// bytes changed (as valid zstd).
func hostileBodies(t *testing.T, mf []byte, try func([]byte)) {
	zr, _ := zstd.NewReader(nil)
	body, err := zr.DecodeAll(mf[len(modelMagic):], nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	for i := 0; i < min(len(body), 3000); i++ {
		for _, v := range []byte{body[i] ^ 0x5a, 0xff, 0} {
			p := append([]byte(nil), body...)
			p[i] = v
			try(enc.EncodeAll(p, mf[:len(modelMagic)]))
		}
	}
}

// FuzzDecodeModel: hostile model forms never panic, never write past the
// bound, and every refusal is an integrity error; RebuildModel does the
// same and agrees with DecodeModel then Encode.
func FuzzDecodeModel(f *testing.F) {
	content := sample()[:3000]
	for _, lvl := range []int{1, 6} {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, lvl)
		zw.Write(content)
		zw.Close()
		var form bytes.Buffer
		Decode(context.Background(), &form, bytes.NewReader(b.Bytes()))
		for _, ranked := range []bool{true, false} { // DFHMODL2 and DFHMODL1
			var mf bytes.Buffer
			encodeModelForm(context.Background(), &mf, bytes.NewReader(form.Bytes()), bytes.NewReader(content), Levels[lvl], 1<<20, ranked)
			f.Add(mf.Bytes())
		}
		// DFHMODL3: libdeflate's greedy, lazy and lazy2 matchers (here
		// with many corrections and headers).
		for _, l := range []int{LibdeflateLevel + 3, LibdeflateLevel + 6, LibdeflateLevel + 9} {
			var mf bytes.Buffer
			EncodeModel(context.Background(), &mf, bytes.NewReader(form.Bytes()), bytes.NewReader(content), Levels[l], 1<<20)
			f.Add(mf.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var out bytes.Buffer
		const max = 1 << 16
		err := DecodeModel(context.Background(), &out, bytes.NewReader(p), bytes.NewReader(content), max)
		if out.Len() > max {
			t.Fatalf("wrote %d bytes past %d", out.Len(), max)
		}
		if err != nil && fault.KindOf(err, 0) != fault.Integrity {
			t.Fatalf("non-integrity error: %v", err)
		}
		rebuildAgrees(t, p, content, 1<<16)
	})
}

// TestModelRebase: the hash chains' 16-bit offsets move on (rebase,
// every 32 KiB or so: several times over this content) without changing
// a prediction.
func TestModelRebase(t *testing.T) {
	content := modelSample()
	for _, lvl := range []string{"-1", "-6", "-9"} {
		blob := compressWith(t, []string{"gzip", lvl, "-n"}, content)
		var form bytes.Buffer
		if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		l := int(lvl[1] - '0')
		if _, st := modelRoundTrip(t, blob, content, Levels[l]); st.Corrections != 0 {
			t.Errorf("gzip %s: %d corrections with rebasing (none without)", lvl, st.Corrections)
		}
	}
}

// TestModelHeaderFields: gzip members whose headers carry every field
// (mtime, extra, name, comment, header CRC), several members and bytes
// after the last: the model form keeps them all and rebuilds the blob
// exactly, still predicting every token (zlib's deflate, by hand-made
// gzip framing).
func TestModelHeaderFields(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	content := modelSample()
	blob := compressWith(t, []string{"python3", "-c", `import sys,zlib,struct
d=sys.stdin.buffer.read()
def member(data,lvl,name,comment):
    h=b"\x1f\x8b\x08\x1e"+struct.pack("<I",1700000000)+b"\x02\x03"
    h+=struct.pack("<H",6)+b"AB\x02\x00xy"+name+b"\x00"+comment+b"\x00"
    h+=struct.pack("<H",zlib.crc32(h)&0xffff)
    c=zlib.compressobj(lvl,zlib.DEFLATED,-15)
    return h+c.compress(data)+c.flush()+struct.pack("<II",zlib.crc32(data),len(data)&0xffffffff)
n=len(d)//2
sys.stdout.buffer.write(member(d[:n],6,b"a.tar",b"first")+member(d[n:],6,b"b.tar",b"second")+b"\x00"*5)`}, content)
	if _, st := modelRoundTrip(t, blob, content, Levels[6]); st.Corrections != 0 || st.Headers != 0 {
		t.Errorf("%d corrections, %d headers recorded: want none", st.Corrections, st.Headers)
	}
}

// TestModelFormVersions: the first model form (DFHMODL1, distances as
// they are) still decodes; the ranked one (DFHMODL2) rebuilds the same
// token form, and costs less where another encoder's matches differ
// from the model's (libdeflate's lazy matcher).
func TestModelFormVersions(t *testing.T) {
	ctx := context.Background()
	content := modelSample()
	argvs := [][]string{{"gzip", "-6", "-c"}}
	if _, err := exec.LookPath("libdeflate-gzip"); err == nil {
		argvs = append(argvs, []string{"libdeflate-gzip", "-6", "-c"})
	}
	for _, argv := range argvs {
		blob := compressWith(t, argv, content)
		var form bytes.Buffer
		if err := Decode(ctx, &form, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		var sizes [2]int
		for i, ranked := range []bool{false, true} {
			var mf, back bytes.Buffer
			if _, err := encodeModelForm(ctx, &mf, bytes.NewReader(form.Bytes()), bytes.NewReader(content), Levels[6], int64(len(blob)), ranked); err != nil {
				t.Fatal(err)
			}
			if err := DecodeModel(ctx, &back, bytes.NewReader(mf.Bytes()), bytes.NewReader(content), int64(form.Len())); err != nil {
				t.Fatalf("%v ranked=%v: %v", argv, ranked, err)
			}
			if !bytes.Equal(back.Bytes(), form.Bytes()) {
				t.Fatalf("%v ranked=%v: the model form rebuilds another token form", argv, ranked)
			}
			sizes[i] = mf.Len()
		}
		t.Logf("%v: model form %d bytes as DFHMODL1, %d as DFHMODL2", argv, sizes[0], sizes[1])
		if argv[0] == "libdeflate-gzip" && sizes[1] >= sizes[0] {
			t.Errorf("%v: the ranked form (%d bytes) is not smaller than the first (%d)", argv, sizes[1], sizes[0])
		}
	}
}
