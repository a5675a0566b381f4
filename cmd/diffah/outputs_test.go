package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diffah/diffah/internal/lock"
)

// outputsFixture is a built binary, the fixtures and an archive v1→v2.
type outputsFixture struct {
	bin, fx, delta string
	archive        []byte
	// v2 is the manifest digest of the v2 fixture.
	v2 string
}

func newOutputsFixture(t *testing.T) *outputsFixture {
	t.Helper()
	fx := fixtures(t)
	o := &outputsFixture{bin: buildBinary(t), fx: fx, delta: filepath.Join(t.TempDir(), "d.dlt")}
	mustRun(t, o.bin, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", o.delta)
	var err error
	if o.archive, err = os.ReadFile(o.delta); err != nil {
		t.Fatal(err)
	}
	o.v2 = indexDigest(t, filepath.Join(fx, "v2"))
	return o
}

// stalled is a diffah run whose stdin is a pipe the test feeds (or not).
type stalled struct {
	cmd        *exec.Cmd
	in         *os.File
	out, errb  bytes.Buffer
	exited     chan struct{}
	exitCode   int
	exitedWhen time.Time
}

func startStalled(t *testing.T, bin, dir string, feed []byte, args ...string) *stalled {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &stalled{cmd: exec.Command(bin, args...), in: w, exited: make(chan struct{})}
	s.cmd.Dir = dir
	s.cmd.Stdin = r
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.errb
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	go func() {
		err := s.cmd.Wait()
		s.exitedWhen = time.Now()
		s.exitCode = 0
		if ee, ok := err.(*exec.ExitError); ok {
			s.exitCode = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				s.exitCode = -int(ws.Signal())
			}
		}
		close(s.exited)
	}()
	t.Cleanup(func() {
		w.Close()
		s.cmd.Process.Kill()
		<-s.exited
	})
	if len(feed) > 0 {
		if _, err := w.Write(feed); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *stalled) finish(t *testing.T, rest []byte) int {
	t.Helper()
	if len(rest) > 0 {
		if _, err := s.in.Write(rest); err != nil {
			t.Fatal(err)
		}
	}
	s.in.Close()
	select {
	case <-s.exited:
	case <-time.After(2 * time.Minute):
		t.Fatal("run never finished")
	}
	return s.exitCode
}

// waitLocked waits until a run holds the lock of out (the lock file names
// its pid once the lock is held).
func waitLocked(t *testing.T, out string, s *stalled) {
	t.Helper()
	lf := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".diffah-lock")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(lf); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(s.cmd.Process.Pid) {
			return
		}
		select {
		case <-s.exited:
			t.Fatalf("run exited %d before taking the lock: %s", s.exitCode, s.errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("%s never locked", out)
}

// waitTemp waits until a temporary sibling of something in dir exists.
func waitTemp(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(litter(t, dir)) > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no temporary output appeared in %s", dir)
}

// litter lists temporary outputs and lock files in dir (recursively).
func litter(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		n := d.Name()
		if strings.Contains(n, ".diffah-tmp-") || strings.HasSuffix(n, ".diffah-lock") || strings.Contains(n, "diffah-import") || strings.Contains(n, ".tmp-") {
			out = append(out, p)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out
}

func noLitter(t *testing.T, dir string) {
	t.Helper()
	if l := litter(t, dir); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
}

// TestSecondImportRefused: a second import to the output another import
// is writing refuses at once (exit 3, naming the output) and the first,
// whose temporary directory used to be swept from under it, finishes with
// the exact image.
func TestSecondImportRefused(t *testing.T) {
	o := newOutputsFixture(t)
	w := t.TempDir()
	out := filepath.Join(w, "out")
	half := len(o.archive) / 2
	a := startStalled(t, o.bin, w, o.archive[:half], "import", "--baseline", "oci:"+o.fx+"/v1", "-o", "oci:"+out)
	waitLocked(t, out, a)
	waitTemp(t, w)
	start := time.Now()
	code, _, stderr := runIn(t, o.bin, w, nil, "import", "--baseline", "oci:"+o.fx+"/v1", "-o", "oci:"+out, o.delta)
	if code != 3 || !strings.Contains(stderr, "another diffah is writing "+out) {
		t.Fatalf("second import: exit %d, want 3 naming %s:\n%s", code, out, stderr)
	}
	d := time.Since(start)
	t.Logf("second import refused in %v", d)
	if d > 10*time.Second {
		t.Errorf("second import took %v to refuse", d)
	}
	if code := a.finish(t, o.archive[half:]); code != 0 {
		t.Fatalf("first import: exit %d:\n%s", code, a.errb.String())
	}
	if got := skopeoDigest(t, "oci:"+out); got != o.v2 {
		t.Fatalf("first import wrote %s, want %s", got, o.v2)
	}
	mustRun(t, o.bin, nil, "diff", "oci:"+o.fx+"/v2", "oci:"+out)
	noLitter(t, w)
}

// TestImportWaits: with --wait the second import waits for the first and
// then writes its image.
func TestImportWaits(t *testing.T) {
	o := newOutputsFixture(t)
	w := t.TempDir()
	out := filepath.Join(w, "out")
	half := len(o.archive) / 2
	a := startStalled(t, o.bin, w, o.archive[:half], "import", "--baseline", "oci:"+o.fx+"/v1", "-o", "oci:"+out+":first")
	waitLocked(t, out, a)
	b := startStalled(t, o.bin, w, nil, "import", "--wait", "--baseline", "oci:"+o.fx+"/v1", "-o", "oci:"+out+":second", o.delta)
	select {
	case <-b.exited:
		t.Fatalf("--wait run exited %d while the output was locked: %s", b.exitCode, b.errb.String())
	case <-time.After(time.Second):
	}
	if code := a.finish(t, o.archive[half:]); code != 0 {
		t.Fatalf("first import: exit %d:\n%s", code, a.errb.String())
	}
	if code := b.finish(t, nil); code != 0 {
		t.Fatalf("waiting import: exit %d:\n%s", code, b.errb.String())
	}
	if !b.exitedWhen.After(a.exitedWhen) {
		t.Fatal("the waiting import finished before the one it waited for")
	}
	for _, tag := range []string{"first", "second"} {
		if got := skopeoDigest(t, "oci:"+out+":"+tag); got != o.v2 {
			t.Fatalf("%s: %s, want %s", tag, got, o.v2)
		}
	}
	noLitter(t, w)
}

// TestUnpackLocked: while unpack writes DIR, a second unpack and a resolve
// of DIR refuse (resolve used to run on the half-written layout); the
// unpack then completes, and resolve after it gives the exact image.
func TestUnpackLocked(t *testing.T) {
	o := newOutputsFixture(t)
	w := t.TempDir()
	dir := filepath.Join(w, "x")
	half := len(o.archive) / 2
	a := startStalled(t, o.bin, w, o.archive[:half], "unpack", "-o", dir)
	waitLocked(t, dir, a)
	waitTemp(t, w)
	for _, args := range [][]string{
		{"unpack", "-o", dir, o.delta},
		{"resolve", "--baseline", "oci:" + o.fx + "/v1", dir},
	} {
		code, _, stderr := runIn(t, o.bin, w, nil, args...)
		if code != 3 || !strings.Contains(stderr, "another diffah is writing "+dir) {
			t.Fatalf("%s during unpack: exit %d, want 3 naming %s:\n%s", args[0], code, dir, stderr)
		}
	}
	if code := a.finish(t, o.archive[half:]); code != 0 {
		t.Fatalf("unpack: exit %d:\n%s", code, a.errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "diffah", "sidecar.json")); err != nil {
		t.Fatalf("unpacked layout lacks its sidecar: %v", err)
	}
	mustRun(t, o.bin, nil, "resolve", "--baseline", "oci:"+o.fx+"/v1", dir)
	if got := skopeoDigest(t, "oci:"+dir); got != o.v2 {
		t.Fatalf("resolved %s, want %s", got, o.v2)
	}
	noLitter(t, w)
}

// silentListener accepts connections and never answers: a hung registry.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestTwoResolves: a resolve stuck on a hung baseline registry holds the
// directory; a second resolve of it refuses; SIGTERM ends the first within
// a second, and the second then resolves.
func TestTwoResolves(t *testing.T) {
	o := newOutputsFixture(t)
	w := t.TempDir()
	dir := filepath.Join(w, "x")
	mustRun(t, o.bin, bytes.NewReader(o.archive), "unpack", "-o", dir)
	a := startStalled(t, o.bin, w, nil, "resolve", "--baseline", "docker://"+silentListener(t)+"/app:1", dir)
	waitLocked(t, dir, a)
	time.Sleep(200 * time.Millisecond) // into the registry read
	code, _, stderr := runIn(t, o.bin, w, nil, "resolve", "--baseline", "oci:"+o.fx+"/v1", dir)
	if code != 3 || !strings.Contains(stderr, "another diffah is writing "+dir) {
		t.Fatalf("second resolve: exit %d, want 3 naming %s:\n%s", code, dir, stderr)
	}
	sent := time.Now()
	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.finish(t, nil); code != 130 {
		t.Fatalf("stuck resolve after SIGTERM: exit %d:\n%s", code, a.errb.String())
	}
	if d := a.exitedWhen.Sub(sent); d > time.Second {
		t.Fatalf("SIGTERM took %v", d)
	}
	mustRun(t, o.bin, nil, "resolve", "--baseline", "oci:"+o.fx+"/v1", dir)
	if got := skopeoDigest(t, "oci:"+dir); got != o.v2 {
		t.Fatalf("resolved %s, want %s", got, o.v2)
	}
	noLitter(t, w)
}

// TestSignalWhileReadBlocks: SIGINT or SIGTERM while stdin is a stalled
// pipe (`sleep 1000 | diffah unpack`, or an archive that stops mid-entry)
// exits 130 within a second and leaves neither output nor temporaries nor
// lock files.
func TestSignalWhileReadBlocks(t *testing.T) {
	o := newOutputsFixture(t)
	cases := []struct {
		name string
		feed int // archive bytes written before the pipe stalls
		sig  syscall.Signal
		args func(w string) []string
	}{
		{"unpack/silent-pipe/INT", 0, syscall.SIGINT, func(w string) []string { return []string{"unpack", "-o", filepath.Join(w, "x")} }},
		{"unpack/mid-entry/TERM", len(o.archive) / 2, syscall.SIGTERM, func(w string) []string { return []string{"unpack", "-o", filepath.Join(w, "x")} }},
		{"import/mid-entry/INT", len(o.archive) / 2, syscall.SIGINT, func(w string) []string {
			return []string{"import", "--baseline", "oci:" + o.fx + "/v1", "-o", "oci:" + filepath.Join(w, "x")}
		}},
		{"import/silent-pipe/TERM", 0, syscall.SIGTERM, func(w string) []string {
			return []string{"import", "--baseline", "oci:" + o.fx + "/v1", "-o", "oci:" + filepath.Join(w, "x")}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := t.TempDir()
			s := startStalled(t, o.bin, w, o.archive[:c.feed], c.args(w)...)
			if c.feed > 0 {
				waitTemp(t, w)
			}
			time.Sleep(300 * time.Millisecond) // let it read what it has and block
			sent := time.Now()
			s.cmd.Process.Signal(c.sig)
			select {
			case <-s.exited:
			case <-time.After(30 * time.Second):
				t.Fatal("no exit 30 s after the signal")
			}
			took := s.exitedWhen.Sub(sent)
			t.Logf("exit %d %v after the signal", s.exitCode, took)
			if s.exitCode != 130 {
				t.Fatalf("exit %d, want 130:\n%s", s.exitCode, s.errb.String())
			}
			if took > time.Second {
				t.Fatalf("took %v to exit after the signal, want under 1 s", took)
			}
			if !strings.Contains(s.errb.String(), "interrupted") {
				t.Errorf("stderr: %s", s.errb.String())
			}
			if _, err := os.Lstat(filepath.Join(w, "x")); err == nil {
				t.Error("an interrupted run left its output")
			}
			noLitter(t, w)
		})
	}
}

// panicReader hands out r and panics after n bytes: a bug reached in the
// middle of writing an output.
type panicReader struct {
	r io.Reader
	n int
}

func (p *panicReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		panic("test: reader exploded")
	}
	if len(b) > p.n {
		b = b[:p.n]
	}
	k, err := p.r.Read(b)
	p.n -= k
	return k, err
}

// TestPanicIsInternalError: a panic while writing is exit 70, "internal
// error … please report", no stack unless --log-level debug, and nothing
// left behind: no output, no temporary directory, no lock file.
func TestPanicIsInternalError(t *testing.T) {
	o := newOutputsFixture(t)
	for _, c := range []struct {
		name  string
		args  func(w string) []string
		debug bool
	}{
		{"unpack", func(w string) []string { return []string{"unpack", "-o", filepath.Join(w, "x")} }, false},
		{"import", func(w string) []string {
			return []string{"import", "--baseline", "oci:" + o.fx + "/v1", "-o", "oci:" + filepath.Join(w, "x")}
		}, false},
		{"unpack-debug", func(w string) []string {
			return []string{"--log-level", "debug", "unpack", "-o", filepath.Join(w, "x")}
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := t.TempDir()
			var out, errb bytes.Buffer
			in := &panicReader{r: bytes.NewReader(o.archive), n: len(o.archive) / 2}
			code := run(c.args(w), in, &out, &errb)
			stderr := errb.String()
			if code != 70 {
				t.Fatalf("exit %d, want 70:\n%s", code, stderr)
			}
			if in.n > 0 {
				t.Fatal("the run never reached the panic")
			}
			if !strings.Contains(stderr, "diffah: internal error: test: reader exploded") || !strings.Contains(stderr, "please report") {
				t.Errorf("stderr: %s", stderr)
			}
			if hasStack := strings.Contains(stderr, "goroutine "); hasStack != c.debug {
				t.Errorf("stack on stderr: %v, want %v:\n%s", hasStack, c.debug, stderr)
			}
			if _, err := os.Lstat(filepath.Join(w, "x")); err == nil {
				t.Error("the output exists after a panic")
			}
			noLitter(t, w)
		})
	}
}

// TestExistingLayoutDamagedBlob: import into an existing OCI layout that
// already holds blobs of the new image with flipped bits (same size) — a
// layer shared with v1, and the v2 config — must not keep them: they are
// replaced with the verified bytes, and skopeo and umoci read the result.
// A directory where a blob belongs is refused (exit 4).
func TestExistingLayoutDamagedBlob(t *testing.T) {
	o := newOutputsFixture(t)
	w := t.TempDir()
	lay := filepath.Join(w, "lay")
	if out, err := exec.Command("cp", "-r", filepath.Join(o.fx, "v1"), lay).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	m2 := manifestOf(t, filepath.Join(o.fx, "v2"))
	m1 := manifestOf(t, filepath.Join(o.fx, "v1"))
	shared := ""
	for _, l2 := range m2.Layers {
		for _, l1 := range m1.Layers {
			if l1.Digest == l2.Digest {
				shared = l2.Digest.Hex
			}
		}
	}
	if shared == "" {
		t.Fatal("fixture: v1 and v2 share no layer")
	}
	blob := func(hex string) string { return filepath.Join(lay, "blobs", "sha256", hex) }
	flip := func(p string, src string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x01
		os.Chmod(p, 0o644)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flip(blob(shared), blob(shared))
	cfg := m2.Config.Digest.Hex
	flip(blob(cfg), filepath.Join(o.fx, "v2", "blobs", "sha256", cfg))

	mustRun(t, o.bin, nil, "import", "--baseline", "oci:"+o.fx+"/v1", "-o", "oci:"+lay+":v2", o.delta)
	for _, h := range []string{shared, cfg} {
		data, err := os.ReadFile(blob(h))
		if err != nil {
			t.Fatal(err)
		}
		if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != h {
			t.Fatalf("blob %s kept its damaged bytes", h)
		}
	}
	if got := skopeoDigest(t, "oci:"+lay+":v2"); got != o.v2 {
		t.Fatalf("skopeo reads %s, want %s", got, o.v2)
	}
	if _, err := exec.LookPath("umoci"); err == nil {
		for _, tag := range []string{"v2", "latest"} {
			if out, err := exec.Command("umoci", "unpack", "--rootless", "--image", lay+":"+tag, filepath.Join(w, "bundle-"+tag)).CombinedOutput(); err != nil {
				t.Fatalf("umoci unpack %s: %v\n%s", tag, err, out)
			}
		}
	}
	mustRun(t, o.bin, nil, "diff", "oci:"+o.fx+"/v2", "oci:"+lay+":v2")
	noLitter(t, w)

	// A directory in a blob's place is not something to write over.
	lay2 := filepath.Join(w, "lay2")
	if out, err := exec.Command("cp", "-r", filepath.Join(o.fx, "v1"), lay2).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.Mkdir(filepath.Join(lay2, "blobs", "sha256", cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runIn(t, o.bin, w, nil, "import", "--baseline", "oci:"+o.fx+"/v1", "-o", "oci:"+lay2+":v2", o.delta)
	if code != 4 || !strings.Contains(stderr, cfg) {
		t.Fatalf("directory at a blob path: exit %d, want 4 naming the blob:\n%s", code, stderr)
	}
}

// TestEveryWriterLocks: every command that writes a file or directory
// refuses, exit 3 naming it, while another diffah holds that output, and
// writes nothing.
func TestEveryWriterLocks(t *testing.T) {
	o := newOutputsFixture(t)
	w := t.TempDir()
	unpacked := filepath.Join(w, "unpacked")
	mustRun(t, o.bin, bytes.NewReader(o.archive), "unpack", "-o", unpacked)
	plan := filepath.Join(w, "plan.json")
	os.WriteFile(plan, []byte(mustRun(t, o.bin, nil, "plan", "--target", "oci:"+o.fx+"/v2", "--baseline", "oci:"+o.fx+"/v1")), 0o644)
	v1 := "oci:" + o.fx + "/v1"
	out := func(n string) string { return filepath.Join(w, "out", n) }
	cases := []struct {
		name, locked string
		args         []string
	}{
		{"unpack", out("u"), []string{"unpack", "-o", out("u"), o.delta}},
		{"resolve", unpacked, []string{"resolve", "--baseline", v1, unpacked}},
		{"resolve -o", out("r.tar"), []string{"resolve", "--baseline", v1, unpacked, "-o", "oci-archive:" + out("r.tar")}},
		{"import oci", out("i"), []string{"import", "--baseline", v1, "-o", "oci:" + out("i") + ":t", o.delta}},
		{"import dir", out("d"), []string{"import", "--baseline", v1, "-o", "dir:" + out("d"), o.delta}},
		{"import docker-archive", out("i.tar"), []string{"import", "--baseline", v1, "-o", "docker-archive:" + out("i.tar") + ":a:b", "--allow-convert", o.delta}},
		{"export", out("e.dlt"), []string{"export", "--target", "oci:" + o.fx + "/v2", "--baseline", v1, "-o", out("e.dlt")}},
		{"pack", out("p.dlt"), []string{"pack", "-o", out("p.dlt"), plan}},
		{"keygen", out("k.pub"), []string{"keygen", out("k.key"), out("k.pub")}},
		{"inspect --html", out("r.html"), []string{"inspect", "--html", out("r.html"), o.delta}},
		{"diff --report-dir", out("rd"), []string{"diff", "--report-dir", out("rd"), v1, "oci:" + o.fx + "/v2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := treeSum(t, w)
			l, err := lock.Acquire(context.Background(), c.locked, lock.Options{})
			if err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runIn(t, o.bin, w, nil, c.args...)
			l.Release()
			if code != 3 || !strings.Contains(stderr, "another diffah is writing "+c.locked) {
				t.Fatalf("exit %d, want 3 naming %s:\n%s", code, c.locked, stderr)
			}
			if after := treeSum(t, w); after != before {
				t.Fatal("a refused run changed the work directory")
			}
		})
	}
}

// With --log-format json the internal error is one JSON record, like
// every other line on stderr, and carries the stack only at debug level.
func TestPanicAsJSON(t *testing.T) {
	o := newOutputsFixture(t)
	for _, debug := range []bool{false, true} {
		w := t.TempDir()
		args := []string{"--log-format", "json", "unpack", "-o", filepath.Join(w, "x")}
		if debug {
			args = append([]string{"--log-level", "debug"}, args...)
		}
		var out, errb bytes.Buffer
		code := run(args, &panicReader{r: bytes.NewReader(o.archive), n: len(o.archive) / 2}, &out, &errb)
		if code != 70 {
			t.Fatalf("exit %d:\n%s", code, errb.String())
		}
		var last map[string]any
		for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
			last = nil
			if err := json.Unmarshal([]byte(line), &last); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
		}
		if msg, _ := last["error"].(string); !strings.HasPrefix(msg, "internal error: test: reader exploded") || last["exit"] != float64(70) {
			t.Fatalf("last record: %v", last)
		}
		if _, has := last["stack"]; has != debug {
			t.Fatalf("stack in the record: %v, want %v", has, debug)
		}
		noLitter(t, w)
	}
}

// TestSignalWhileWriteBlocks: the same when stdout is a pipe nobody reads
// (`diffah export -o - | ssh site` with a hung ssh): exit 130 within a
// second.
func TestSignalWhileWriteBlocks(t *testing.T) {
	fx := fixtures(t)
	bin := buildBinary(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(bin, "export", "--no-baseline", "--target", "oci:"+fx+"/v2", "-o", "-")
	cmd.Stdout = w
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Wait until the pipe is full: the archive is larger than its buffer.
	time.Sleep(time.Second)
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit 30 s after SIGINT")
	}
	took := time.Since(sent)
	t.Logf("exit %d %v after the signal", cmd.ProcessState.ExitCode(), took)
	if cmd.ProcessState.ExitCode() != 130 || took > time.Second {
		t.Fatalf("exit %d after %v, want 130 within 1 s:\n%s", cmd.ProcessState.ExitCode(), took, errb.String())
	}
}
