package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/diffah/diffah/internal/hostiletar"
	"github.com/diffah/diffah/internal/testregistry"
	"github.com/diffah/diffah/sidecar"
)

// boundedRun runs the binary with a deadline: a run that is still going
// when it passes is killed and fails the test, so a hang can never hang
// the test itself.
func boundedRun(t *testing.T, bin string, limit time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("diffah %s: still running after %v (killed)\n%s", strings.Join(args, " "), limit, errb.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running diffah: %v", err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// copyLayout copies a fixture layout into a temporary directory.
func copyLayout(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// layerBlob is the path of layer i of the only image in an OCI layout.
func layerBlob(t *testing.T, dir string, i int) string {
	t.Helper()
	return filepath.Join(dir, "blobs", "sha256", manifestOf(t, dir).Layers[i].Digest.Hex)
}

// TestHostileProducerImages runs diff and export on layouts whose changed
// layer (the one both commands must read) is a FIFO, a socket-free
// special file, or a link out of the layout; and on an index.json that
// lies about its entry. Each returns promptly with exit 4 and names what
// is wrong; nothing is written; the linked-to file's digest never shows.
func TestHostileProducerImages(t *testing.T) {
	fx := fixtures(t)
	bin := buildBinary(t)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("the producer's private key\n"), 0o600)
	secretSum := sha256.Sum256([]byte("the producer's private key\n"))
	cases := []struct {
		name string
		make func(t *testing.T, dir string)
		says string
	}{
		{"fifo layer", func(t *testing.T, dir string) {
			p := layerBlob(t, dir, 1)
			os.Remove(p)
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is a FIFO"},
		{"zero device layer", func(t *testing.T, dir string) {
			p := layerBlob(t, dir, 1)
			os.Remove(p)
			if err := unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
				t.Skipf("mknod: %v", err)
			}
		}, "character device"},
		{"link out of the layout", func(t *testing.T, dir string) {
			p := layerBlob(t, dir, 1)
			os.Remove(p)
			os.Symlink(secret, p)
		}, "outside the image"},
		{"relative link out of the layout", func(t *testing.T, dir string) {
			p := layerBlob(t, dir, 1)
			os.Remove(p)
			rel, _ := filepath.Rel(filepath.Dir(p), secret)
			os.Symlink(rel, p)
		}, "outside the image"},
		{"index type for a manifest", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "index.json")
			b, _ := os.ReadFile(p)
			var idx map[string]any
			json.Unmarshal(b, &idx)
			idx["manifests"].([]any)[0].(map[string]any)["mediaType"] = "application/vnd.oci.image.index.v1+json"
			b, _ = json.Marshal(idx)
			os.WriteFile(p, b, 0o644)
		}, "index.json says"},
		{"climbing digest", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "index.json")
			b, _ := os.ReadFile(p)
			var idx map[string]any
			json.Unmarshal(b, &idx)
			idx["manifests"].([]any)[0].(map[string]any)["digest"] = "sha256:../../../../secret"
			b, _ = json.Marshal(idx)
			os.WriteFile(p, b, 0o644)
		}, "index.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyLayout(t, filepath.Join(fx, "v2"))
			c.make(t, dir)
			out := filepath.Join(t.TempDir(), "d.dlt")
			for _, args := range [][]string{
				{"diff", "oci:" + fx + "/v1", "oci:" + dir},
				{"export", "--target", "oci:" + dir, "--baseline", "oci:" + fx + "/v1", "-o", out},
			} {
				code, stdout, stderr := boundedRun(t, bin, 60*time.Second, args...)
				if code != 4 || !strings.Contains(stderr, c.says) {
					t.Fatalf("diffah %s: exit %d, want 4 saying %q\n%s", args[0], code, c.says, stderr)
				}
				if strings.Contains(stdout+stderr, hex.EncodeToString(secretSum[:])) {
					t.Fatalf("diffah %s leaks the digest of a file outside the layout:\n%s", args[0], stderr)
				}
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("export wrote %s: %v", out, err)
			}
		})
	}
}

// oneLayerLayout writes an OCI layout of one image whose one layer is the
// tar (or gzip of a tar) b.
func oneLayerLayout(t *testing.T, b []byte) string {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "img")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sparseLayout writes an OCI layout whose one layer holds a 2^40-byte
// sparse file in a few KiB.
func sparseLayout(t *testing.T) string {
	return oneLayerLayout(t, hostiletar.Sparse("usr/lib/big", 1<<40, []byte("x")))
}

// timeBin is GNU time, whose -v report gives a child's peak RSS. The
// rusage of a child of the test process itself is no good: Linux carries
// the forking process's high-water mark across exec, so it would report
// the test binary's own RSS.
const timeBin = "/usr/bin/time"

// startTimed starts bin under /usr/bin/time -v; stderr collects both.
func startTimed(t *testing.T, stderr *bytes.Buffer, bin string, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := os.Stat(timeBin); err != nil {
		t.Skipf("%s not installed: %v", timeBin, err)
	}
	cmd := exec.Command(timeBin, append([]string{"-v", bin}, args...)...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// peakRSS reads "Maximum resident set size (kbytes)" from a time -v report.
func peakRSS(t *testing.T, report string) int64 {
	t.Helper()
	const key = "Maximum resident set size (kbytes): "
	i := strings.Index(report, key)
	if i < 0 {
		t.Fatalf("no peak RSS in:\n%s", report)
	}
	var kb int64
	fmt.Sscan(report[i+len(key):], &kb)
	return kb << 10
}

// childOf returns the pid of the (only) child of pid, waiting for it.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	p := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	for range 100 {
		b, _ := os.ReadFile(p)
		var child int
		if _, err := fmt.Sscan(string(b), &child); err == nil {
			return child
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: no child", p)
	return 0
}

// TestDiffSparseBombHonoursSIGTERM: `diffah diff` on a layer holding a
// 2^40-byte sparse file streams it through a hash (no allocation for it),
// and SIGTERM stops it at once with exit 130. Peak RSS is measured with
// /usr/bin/time -v.
func TestDiffSparseBombHonoursSIGTERM(t *testing.T) {
	fx := fixtures(t)
	bin := buildBinary(t)
	dir := sparseLayout(t)
	var errb bytes.Buffer
	cmd := startTimed(t, &errb, bin, "diff", "oci:"+fx+"/v1", "oci:"+dir)
	diffah := childOf(t, cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("diff ended before SIGTERM (%v); it cannot have hashed 2^40 bytes:\n%s", err, errb.String())
	case <-time.After(3 * time.Second):
	}
	sent := time.Now()
	syscall.Kill(diffah, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(diffah, syscall.SIGKILL)
		<-done
		t.Fatal("diff ignored SIGTERM for 20s")
	}
	took := time.Since(sent)
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit %d after SIGTERM, want 130\n%s", code, errb.String())
	}
	rss := peakRSS(t, errb.String())
	t.Logf("SIGTERM honoured in %v; peak RSS %d MiB", took.Round(time.Millisecond), rss>>20)
	if rss > 256<<20 {
		t.Fatalf("peak RSS %d MiB for a few-KiB layer", rss>>20)
	}
}

// missingPair exports v2 against v1 and picks a reused layer and a patch
// source (different blobs) from the sidecar.
func missingPair(t *testing.T, fx, baseline string) (delta string, reused, source string) {
	t.Helper()
	work := t.TempDir()
	delta = filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", baseline, "-o", delta); code != 0 {
		t.Fatal(e)
	}
	lay := filepath.Join(work, "lay")
	if code, e := diffahRun(t, nil, "unpack", "-o", lay, delta); code != 0 {
		t.Fatal(e)
	}
	f, err := os.Open(filepath.Join(lay, "diffah", "sidecar.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc, err := sidecar.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range sc.Images[0].Blobs {
		if b.Action == sidecar.Reuse && b.Role == sidecar.RoleLayer && reused == "" {
			reused = b.Digest.String()
		}
	}
	for _, b := range sc.Images[0].Blobs {
		if b.Action == sidecar.Patch && source == "" && b.Patch.Sources[0].Digest.String() != reused {
			source = b.Patch.Sources[0].Digest.String()
		}
	}
	if reused == "" || source == "" {
		t.Fatal("the v1→v2 delta should reuse one layer and patch another")
	}
	return delta, reused, source
}

// checkPreflightRefuses runs resolve and import against a baseline that
// lacks reused and source: both exit 4 listing both blobs, and nothing is
// written (the unpacked layout unchanged, no import output, no work
// directory left beside it).
func checkPreflightRefuses(t *testing.T, bin, delta, baseline, reused, source string) {
	t.Helper()
	work := t.TempDir()
	lay := filepath.Join(work, "lay")
	if code, e := diffahRun(t, nil, "unpack", "-o", lay, delta); code != 0 {
		t.Fatal(e)
	}
	before := treeSum(t, lay)
	out := filepath.Join(work, "out")
	for _, args := range [][]string{
		{"resolve", "--baseline", baseline, lay},
		{"import", "--baseline", baseline, "-o", "oci:" + out, delta},
		{"import", "--dry-run", "--baseline", baseline, delta},
	} {
		code, _, stderr := boundedRun(t, bin, 2*time.Minute, args...)
		if code != 4 {
			t.Fatalf("diffah %s: exit %d, want 4\n%s", strings.Join(args, " "), code, stderr)
		}
		for _, d := range []string{reused, source} {
			if !strings.Contains(stderr, d) {
				t.Errorf("diffah %s does not list %s:\n%s", args[0], d, stderr)
			}
		}
		if !strings.Contains(stderr, "nothing written") {
			t.Errorf("diffah %s does not say nothing was written:\n%s", args[0], stderr)
		}
	}
	if treeSum(t, lay) != before {
		t.Fatal("resolve changed the unpacked layout")
	}
	// import checks the baseline before unpacking: an archive cut right
	// after its sidecar still gets the baseline's missing blobs listed,
	// not a complaint about the missing entries.
	whole, err := os.ReadFile(delta)
	if err != nil {
		t.Fatal(err)
	}
	headOnly := filepath.Join(work, "head.dlt")
	os.WriteFile(headOnly, writeTar(t, readTar(t, whole)[:1]), 0o644)
	code, _, stderr := boundedRun(t, bin, 2*time.Minute, "import", "--baseline", baseline, "-o", "oci:"+out, headOnly)
	os.Remove(headOnly)
	if code != 4 || !strings.Contains(stderr, reused) || !strings.Contains(stderr, source) {
		t.Fatalf("import of a head-only archive: exit %d, want 4 listing the missing baseline blobs first:\n%s", code, stderr)
	}
	if ents, _ := os.ReadDir(work); len(ents) != 1 {
		t.Fatalf("left behind in %s: %v", work, names(t, work))
	}
}

// TestPreflightMissingBaselineBlobsLocal: an oci: baseline whose manifest
// lists a reused layer and a patch source whose files are gone.
func TestPreflightMissingBaselineBlobsLocal(t *testing.T) {
	fx := fixtures(t)
	bin := buildBinary(t)
	delta, reused, source := missingPair(t, fx, "oci:"+fx+"/v1")
	base := copyLayout(t, filepath.Join(fx, "v1"))
	for _, d := range []string{reused, source} {
		if err := os.Remove(filepath.Join(base, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))); err != nil {
			t.Fatal(err)
		}
	}
	checkPreflightRefuses(t, bin, delta, "oci:"+base, reused, source)
}

// TestPreflightMissingBaselineBlobsRegistry: the same with the baseline in
// a real registry whose manifest still names the two blobs, deleted from
// the repository: preflight's HEAD requests find both.
func TestPreflightMissingBaselineBlobsRegistry(t *testing.T) {
	fx := fixtures(t)
	bin := buildBinary(t)
	host := testregistry.Start(t)
	ref := "docker://" + host + "/app:1"
	pushFixture(t, fx, "v1", ref)
	delta, reused, source := missingPair(t, fx, ref)
	for _, d := range []string{reused, source} {
		req, _ := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/app/blobs/"+d, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE blob %s: %s", d, resp.Status)
		}
	}
	checkPreflightRefuses(t, bin, delta, ref, reused, source)
}

// headerBombLayout writes an OCI layout whose one gzip layer holds n
// entries with names of nameLen bytes each (PAX path records): a few MiB
// compressed, n*nameLen bytes of names once read.
func headerBombLayout(t *testing.T, n, nameLen int) string {
	t.Helper()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	long := strings.Repeat("d", nameLen)
	for i := range n {
		name := fmt.Sprintf("%s/%d", long, i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	return oneLayerLayout(t, gz.Bytes())
}

// TestDiffHeaderBombBounded: a 360 KiB gzip layer whose tar headers carry
// 260 MiB of names is refused with exit 4 once the entry metadata diff
// keeps passes its bound, with peak RSS under 512 MiB (keeping them all
// took 767 MiB; measured with /usr/bin/time -v).
func TestDiffHeaderBombBounded(t *testing.T) {
	fx := fixtures(t)
	bin := buildBinary(t)
	dir := headerBombLayout(t, 260, 1<<20-64)
	var errb bytes.Buffer
	cmd := startTimed(t, &errb, bin, "diff", "oci:"+fx+"/v1", "oci:"+dir)
	cmd.Wait()
	rss := peakRSS(t, errb.String())
	t.Logf("exit %d, peak RSS %d MiB", cmd.ProcessState.ExitCode(), rss>>20)
	if code := cmd.ProcessState.ExitCode(); code != 4 || !strings.Contains(errb.String(), "entry metadata") {
		t.Fatalf("exit %d, want 4 refusing the entry metadata:\n%s", code, errb.String())
	}
	if rss > 512<<20 {
		t.Fatalf("peak RSS %d MiB", rss>>20)
	}
}
