package deflatetok

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLibdeflateCorpus (DIFFAH_LIBDEFLATE_TAR=path) reports the model
// form of the file compressed by libdeflate-gzip at each lazy level,
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
	}
}
