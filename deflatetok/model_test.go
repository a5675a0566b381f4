package deflatetok

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"testing"
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
	return mf.Len(), st
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
		n, st := modelRoundTrip(t, blob, content, Levels[c.lvl])
		t.Logf("%v: blob %d, model form %d (%.3f%%), tokens %d, corrections %d, blocks %d, headers %d", c.argv[:2], len(blob), n, 100*float64(n)/float64(len(blob)), st.Tokens, st.Corrections, st.Blocks, st.Headers)
	}
}
