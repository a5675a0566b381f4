package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// diffahRun runs the CLI in process.
func diffahRun(t *testing.T, stdin []byte, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, bytes.NewReader(stdin), &out, &errb)
	return code, errb.String()
}

// treeSum hashes every file under dir (names and contents).
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, _ := os.Open(p)
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, rel+" "+hex.EncodeToString(h.Sum(nil)))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestEveryFlippedBit flips one bit at many positions of a real archive:
// unpack must either refuse it with an integrity error and leave nothing,
// or produce exactly the same blobs and manifests as the intact archive.
// (Flips in tar padding carry no data; flips in informational sidecar
// fields such as the tool name or a reference string are only caught by a
// signature, see TestSignedFlips.)
func TestEveryFlippedBit(t *testing.T) {
	fx := fixtures(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	good, _ := os.ReadFile(delta)
	ref := filepath.Join(work, "ref")
	if code, e := diffahRun(t, good, "unpack", "-o", ref); code != 0 {
		t.Fatal(e)
	}
	want := layoutSum(t, ref)
	step := max(1, len(good)/400)
	refused := 0
	for off := 0; off < len(good); off += step {
		b := append([]byte{}, good...)
		b[off] ^= 1 << (off % 8)
		out := filepath.Join(work, "o")
		code, e := diffahRun(t, b, "unpack", "-o", out)
		if code == 0 {
			if got := layoutSum(t, out); got != want {
				t.Fatalf("flip at %d: unpack succeeded with a different layout", off)
			}
			os.RemoveAll(out)
			continue
		}
		refused++
		if code != int(fault.Integrity) {
			t.Fatalf("flip at %d: exit %d, want %d: %s", off, code, fault.Integrity, e)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("flip at %d: refused but left %s", off, out)
		}
	}
	if refused == 0 {
		t.Fatal("no flip was refused")
	}
	t.Logf("%d flips, %d refused, the rest in padding", len(good)/step, refused)
}

// TestTruncatedEverywhere cuts the archive at many lengths.
func TestTruncatedEverywhere(t *testing.T) {
	fx := fixtures(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "--compress", "zstd", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	good, _ := os.ReadFile(delta)
	step := max(1, len(good)/200)
	for n := 0; n < len(good); n += step {
		out := filepath.Join(work, "o")
		code, e := diffahRun(t, good[:n], "unpack", "-o", out)
		if code != int(fault.Integrity) {
			t.Fatalf("cut at %d of %d: exit %d: %s", n, len(good), code, e)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("cut at %d: left %s", n, out)
		}
	}
}

// layoutSum covers what makes the images: every blob and patch, and the
// manifest digests index.json names.
func layoutSum(t *testing.T, dir string) string {
	t.Helper()
	idx, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	var digests []string
	for _, l := range strings.Split(string(idx), "\n") {
		if strings.Contains(l, `"digest"`) {
			digests = append(digests, strings.TrimSpace(l))
		}
	}
	return treeSum(t, filepath.Join(dir, "blobs")) + treeSum(t, filepath.Join(dir, "diffah", "patches")) + strings.Join(digests, ",")
}

// TestSignedFlips: with --verify-key, every flip in the sidecar or its
// signature is refused with the signature exit code, before any output.
func TestSignedFlips(t *testing.T) {
	fx := fixtures(t)
	work := t.TempDir()
	key, pub := filepath.Join(work, "k.pem"), filepath.Join(work, "p.pem")
	if code, e := diffahRun(t, nil, "keygen", key, pub); code != 0 {
		t.Fatal(e)
	}
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--sign-key", key, "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	good, _ := os.ReadFile(delta)
	// The sidecar's content starts at 512; flip inside it.
	for off := 512; off < 512+1500; off += 37 {
		b := append([]byte{}, good...)
		b[off] ^= 1 << (off % 8)
		out := filepath.Join(work, "o")
		code, e := diffahRun(t, b, "unpack", "--verify-key", pub, "-o", out)
		if code != int(fault.Signature) && code != int(fault.Integrity) {
			t.Fatalf("flip at %d: exit %d: %s", off, code, e)
		}
		if code == int(fault.Integrity) && !strings.Contains(e, "sidecar") {
			t.Fatalf("flip at %d refused as integrity, not by the sidecar parser: %s", off, e)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("flip at %d: left %s", off, out)
		}
	}
}
