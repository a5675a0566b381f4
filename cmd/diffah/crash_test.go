package main

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds cmd/diffah once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "diffah")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

func fixtures(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	fx := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "images")
	if _, err := os.Stat(filepath.Join(fx, "v2", "index.json")); err != nil {
		t.Skip("fixtures missing: run make fixtures")
	}
	return fx
}

func mustRun(t *testing.T, bin string, stdin io.Reader, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("diffah %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// TestKillAndRerun kills unpack, resolve and import with SIGKILL at random
// points, many times, and checks each time that the output is either
// absent/unchanged or complete, and that a rerun gives the right image.
func TestKillAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	fx := fixtures(t)
	bin := buildBinary(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	mustRun(t, bin, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "--name", "app", "-o", delta)
	archive, err := os.ReadFile(delta)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	const rounds = 30
	for i := 0; i < rounds; i++ {
		dir := filepath.Join(work, "round", string(rune('a'+i%26))+strings.Repeat("x", i/26))
		os.MkdirAll(filepath.Dir(dir), 0o755)

		// unpack: feed a random prefix of the archive through a pipe, then
		// kill; the directory must not exist.
		cut := rng.Intn(len(archive))
		killDuring(t, bin, archive[:cut], "unpack", "-o", dir)
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("round %d: unpack killed after %d of %d bytes left %s behind", i, cut, len(archive), dir)
		}
		mustRun(t, bin, bytes.NewReader(archive), "unpack", "-o", dir)

		// resolve: kill after a random delay. Before the rerun the layout
		// is either exactly as unpack left it or complete and verified;
		// the rerun must succeed and the result must verify.
		before := treeSum(t, dir)
		killAfter(t, bin, time.Duration(rng.Intn(90000))*time.Microsecond, "resolve", "--baseline", "oci:"+fx+"/v1", dir)
		if _, err := os.Stat(filepath.Join(dir, "diffah", "sidecar.json")); err == nil {
			if treeSum(t, dir) != before {
				t.Fatalf("round %d: a killed resolve changed the unpacked layout in place", i)
			}
		} else {
			checkImage(t, bin, fx, "oci:"+dir+":app")
		}
		mustRun(t, bin, nil, "resolve", "--baseline", "oci:"+fx+"/v1", dir)
		checkImage(t, bin, fx, "oci:"+dir+":app")
		leftovers(t, filepath.Dir(dir))

		// import into a fresh output: absent or complete after a kill.
		out := dir + "-imp"
		killAfter(t, bin, time.Duration(rng.Intn(60))*time.Millisecond, "import", "--baseline", "oci:"+fx+"/v1", "-o", "oci:"+out+":app", delta)
		if _, err := os.Stat(filepath.Join(out, "index.json")); err == nil {
			checkImage(t, bin, fx, "oci:"+out+":app")
		} else if _, err := os.Stat(out); err == nil {
			t.Fatalf("round %d: import killed left an incomplete %s", i, out)
		}
		os.RemoveAll(out)
		mustRun(t, bin, nil, "import", "--baseline", "oci:"+fx+"/v1", "-o", "oci:"+out+":app", delta)
		checkImage(t, bin, fx, "oci:"+out+":app")
		leftovers(t, filepath.Dir(out))
	}
}

// checkImage compares ref's manifest digest with the v2 fixture's through
// diffah diff (exit 0 = identical in strict mode) and re-verifies blobs.
func checkImage(t *testing.T, bin, fx, ref string) {
	t.Helper()
	mustRun(t, bin, nil, "diff", "oci:"+fx+"/v2", ref)
}

func leftovers(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "diffah-tmp") || strings.Contains(e.Name(), "diffah-import") || strings.Contains(e.Name(), ".tmp-") {
			// A killed run may leave a temp sibling; the next run over the
			// same output removes it, so only complain after a clean run.
			t.Fatalf("temporary %s left after a successful run", e.Name())
		}
	}
}

func killDuring(t *testing.T, bin string, input []byte, args ...string) {
	cmd := exec.Command(bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Write(input)
	time.Sleep(5 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	stdin.Close()
}

func killAfter(t *testing.T, bin string, d time.Duration, args ...string) {
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}
