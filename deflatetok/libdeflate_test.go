package deflatetok

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestLibdeflateCorpus (DIFFAH_LIBDEFLATE_TAR=path) reports the model
// form of the file compressed by libdeflate-gzip at each level 2–9,
// with the zlib model at level 6 (what fitted it before) and the
// libdeflate model of that level beside it.
func TestLibdeflateCorpus(t *testing.T) {
	path := os.Getenv("DIFFAH_LIBDEFLATE_TAR")
	if path == "" {
		t.Skip("DIFFAH_LIBDEFLATE_TAR")
	}
	if _, err := exec.LookPath("libdeflate-gzip"); err != nil {
		t.Skip("libdeflate-gzip not installed")
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	levels := strings.Fields(os.Getenv("DIFFAH_LIBDEFLATE_LEVELS"))
	if len(levels) == 0 {
		levels = []string{"6"}
	}
	for _, l := range levels {
		blob := compressWith(t, []string{"libdeflate-gzip", "-" + l, "-c"}, content)
		lvl := int(l[0] - '0')
		for _, i := range []int{6, LibdeflateLevel + lvl} {
			n, st := modelRoundTrip(t, blob, content, Levels[i])
			t.Logf("libdeflate -%s, %s: blob %d, model form %d (%.2f KB/MB), %d corrections of %d tokens (%.2f%%), %d of %d headers",
				l, LevelName(i), len(blob), n, float64(n)/1e3/(float64(len(content))/1e6), st.Corrections, st.Tokens, 100*float64(st.Corrections)/float64(st.Tokens), st.Headers, st.Blocks)
		}
		var form bytes.Buffer
		if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
			t.Fatal(err)
		}
		fit, rate, err := FitParams(context.Background(), bytes.NewReader(form.Bytes()), int64(form.Len()), content[:min(len(content), 1<<20)])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("libdeflate -%s: FitParams finds %s (%.3f%% off)", l, LevelName(fit), 100*rate)
	}
}

// TestLibdeflateFits: libdeflate-gzip's levels 2–9 are found by the
// level search, and their model form rebuilds the blob exactly at a
// small fraction of the zlib model's corrections and headers.
func TestLibdeflateFits(t *testing.T) {
	if _, err := exec.LookPath("libdeflate-gzip"); err != nil {
		t.Skip("libdeflate-gzip not installed")
	}
	content := modelSample()
	for lvl := 2; lvl <= 9; lvl++ {
		blob, fit, rate := libdeflateFit(t, "-"+strconv.Itoa(lvl), content, 1<<20)
		// (On this sample 2 and 3, and 7–9, write the same streams: the
		// level found is one of them.)
		if Levels[fit].Family != FamilyLibdeflate {
			t.Errorf("libdeflate -%d: found %s", lvl, LevelName(fit))
		}
		n, st := modelRoundTrip(t, blob, content, Levels[fit])
		zn, zst := modelRoundTrip(t, blob, content, Levels[6])
		t.Logf("libdeflate -%d: %s (%.3f%% off): model form %d bytes, %d corrections of %d tokens, %d of %d headers; zlib level 6: %d bytes, %d corrections, %d headers",
			lvl, LevelName(fit), 100*rate, n, st.Corrections, st.Tokens, st.Headers, st.Blocks, zn, zst.Corrections, zst.Headers)
		if n*1000 > len(blob) || st.Corrections*100 > zst.Corrections || st.Headers*4 > zst.Headers {
			t.Errorf("libdeflate -%d: model form %d bytes for a %d-byte blob, %d corrections, %d headers (zlib model: %d bytes, %d, %d)", lvl, n, len(blob), st.Corrections, st.Headers, zn, zst.Corrections, zst.Headers)
		}
	}
}

// TestDecodeLDModelHostile: libdeflate model forms (DFHMODL3) with any
// byte changed, truncated, or naming another family or parse are refused
// as integrity errors or rebuild something else, within the bound.
func TestDecodeLDModelHostile(t *testing.T) {
	content := sample()[:12000]
	var gb, form bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gb, 6)
	zw.Write(content)
	zw.Close()
	if err := Decode(context.Background(), &form, bytes.NewReader(gb.Bytes())); err != nil {
		t.Fatal(err)
	}
	try := hostileTry(t, content, int64(form.Len()), int64(gb.Len()))
	for _, l := range []int{LibdeflateLevel + 3, LibdeflateLevel + 5, LibdeflateLevel + 8} {
		var mf bytes.Buffer
		if _, err := EncodeModel(context.Background(), &mf, bytes.NewReader(form.Bytes()), bytes.NewReader(content), Levels[l], 1<<20); err != nil {
			t.Fatal(err)
		}
		if string(mf.Bytes()[:len(modelMagicV3)]) != modelMagicV3 {
			t.Fatalf("%s: magic %q", LevelName(l), mf.Bytes()[:8])
		}
		var back bytes.Buffer
		if err := DecodeModel(context.Background(), &back, bytes.NewReader(mf.Bytes()), bytes.NewReader(content), int64(form.Len())); err != nil || !bytes.Equal(back.Bytes(), form.Bytes()) {
			t.Fatalf("%s: does not round-trip: %v", LevelName(l), err)
		}
		good := mf.Bytes()
		for i := range good {
			try(good[:i])
		}
		hostileBodies(t, good, try)
	}
}

// TestLDModelRebase: the libdeflate model's 32-bit offsets move on
// (rebase) without changing a prediction; here every 96 KiB.
func TestLDModelRebase(t *testing.T) {
	content := modelSample()[:400000]
	blob := compressWith(t, []string{"libdeflate-gzip", "-6", "-c"}, content)
	_, want := modelRoundTrip(t, blob, content, Levels[LibdeflateLevel+6])
	defer func(n int64) { rebaseAt = n }(rebaseAt)
	rebaseAt = 3 * wSize
	if _, st := modelRoundTrip(t, blob, content, Levels[LibdeflateLevel+6]); st != want {
		t.Errorf("with rebasing %+v, without %+v", st, want)
	}
}

// TestLibdeflateOthers: libdeflate's levels without a model of their own
// (1: another match finder; 10–12: near-optimal
// parsing) still rebuild exactly from the model form of the level found.
func TestLibdeflateOthers(t *testing.T) {
	if _, err := exec.LookPath("libdeflate-gzip"); err != nil {
		t.Skip("libdeflate-gzip not installed")
	}
	content := modelSample()[:500000]
	for _, lvl := range []string{"-1", "-10", "-12"} {
		blob, fit, rate := libdeflateFit(t, lvl, content, 1<<18)
		n, st := modelRoundTrip(t, blob, content, Levels[fit])
		t.Logf("libdeflate %s: %s (%.2f%% off): model form %d bytes of %d, %d corrections of %d tokens", lvl, LevelName(fit), 100*rate, n, len(blob), st.Corrections, st.Tokens)
	}
}

// libdeflateFit compresses content with libdeflate-gzip at level lvl and
// returns the blob and the level FitParams finds on its first prefix
// bytes, with the share it mispredicts there.
func libdeflateFit(t *testing.T, lvl string, content []byte, prefix int) ([]byte, int, float64) {
	t.Helper()
	blob := compressWith(t, []string{"libdeflate-gzip", lvl, "-c"}, content)
	var form bytes.Buffer
	if err := Decode(context.Background(), &form, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	fit, rate, err := FitParams(context.Background(), bytes.NewReader(form.Bytes()), int64(form.Len()), content[:prefix])
	if err != nil {
		t.Fatal(err)
	}
	return blob, fit, rate
}

// TestLevelName: an index in Levels is named by its family and the
// level that family's tools take, never by the index itself (libdeflate
// -6 sits at index 16).
func TestLevelName(t *testing.T) {
	for _, c := range []struct {
		i    int
		want string
	}{{1, "zlib/gzip level 1"}, {9, "zlib/gzip level 9"}, {LibdeflateLevel + 2, "libdeflate level 2"}, {LibdeflateLevel + 6, "libdeflate level 6"}, {LibdeflateLevel + 9, "libdeflate level 9"}} {
		if got := LevelName(c.i); got != c.want {
			t.Errorf("LevelName(%d) = %q, want %q", c.i, got, c.want)
		}
		want := FamilyZlib
		if strings.HasPrefix(c.want, "libdeflate") {
			want = FamilyLibdeflate
		}
		if Levels[c.i].Family != want {
			t.Errorf("Levels[%d] is family %v, named %q", c.i, Levels[c.i].Family, c.want)
		}
	}
}
