package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/fakeregistry"
)

// misbehavingEnv is a fake registry holding app:1 and app:2 (the v1 and
// v2 fixtures) and deltas:d (the v1→v2 delta as an artifact), pushed
// while it was honest, plus the same delta and plan on disk.
type misbehavingEnv struct {
	s                *fakeregistry.Server
	h                string
	fx, work         string
	delta, planJSON  string
	planBytes, image []byte
	n                int // for fresh repository names
}

func newMisbehavingEnv(t *testing.T) *misbehavingEnv {
	t.Helper()
	fx := fixtures(t)
	s := fakeregistry.Start(t)
	e := &misbehavingEnv{s: s, h: s.Host, fx: fx, work: t.TempDir()}
	pushFixture(t, fx, "v1", "docker://"+e.h+"/app:1")
	pushFixture(t, fx, "v2", "docker://"+e.h+"/app:2")
	e.delta = filepath.Join(e.work, "d.dlt")
	if code, stderr := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "--name", "app", "-o", e.delta); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr := runOut(t, "plan", "--name", "app", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1")
	if out == "" {
		t.Fatal(stderr)
	}
	e.planBytes = []byte(out)
	if code, stderr := diffahRun(t, e.planBytes, "pack", "-o", "docker://"+e.h+"/deltas:d"); code != 0 {
		t.Fatal(stderr)
	}
	return e
}

// registryCommands are the commands that talk to a registry, each as a
// function of the registry host. %H is the host, %W a fresh directory.
var registryCommands = map[string][]string{
	"plan":        {"plan", "--target", "docker://%H/app:2", "--baseline", "docker://%H/app:1"},
	"export":      {"export", "--target", "docker://%H/app:2", "--baseline", "docker://%H/app:1", "-o", "%W/x.dlt"},
	"import-pull": {"import", "--baseline", "docker://%H/app:1", "-o", "oci:%W/out:app", "%D"},
	"import-push": {"import", "--baseline", "oci:%F/v1", "-o", "docker://%H/other%N:3", "%D"},
	"unpack":      {"unpack", "-o", "%W/u", "docker://%H/deltas:d"},
	"inspect":     {"inspect", "docker://%H/deltas:d"},
	"pack-push":   {"pack", "-o", "docker://%H/new%N:d"},
	// From a registry baseline to another repository of the same
	// registry: shared layers are mounted, not uploaded.
	"import-mount":  {"import", "--baseline", "docker://%H/app:1", "-o", "docker://%H/other%N:3", "%D"},
	"import-remote": {"import", "--baseline", "oci:%F/v1", "-o", "oci:%W/out2:app", "docker://%H/deltas:d"},
}

// refOf is the reference each command's failure must name.
var refOf = map[string]string{
	"plan": "/app:", "export": "/app:", "import-pull": "/app:1", "import-push": "/other",
	"import-mount": "/other", "unpack": "/deltas:d", "inspect": "/deltas:d", "pack-push": "/new", "import-remote": "/deltas:d",
}

func (e *misbehavingEnv) args(t *testing.T, cmd string) []string {
	dir := t.TempDir()
	e.n++
	var out []string
	for _, a := range registryCommands[cmd] {
		a = strings.NewReplacer("%H", e.h, "%W", dir, "%F", e.fx, "%D", e.delta, "%N", strconv.Itoa(e.n)).Replace(a)
		out = append(out, a)
	}
	return append(out, "--timeout", "1s", "--retry-times", "2", "--retry-delay", "10ms")
}

// TestRegistryMisbehaving runs every registry command against a registry
// that stalls, loops, fails, refuses or lies. Each must end, in bounded
// time and with a bounded number of requests, with the documented exit
// code and a message naming the reference: 3 when the network or the
// registry's service fails, 4 when the bytes are wrong.
func TestRegistryMisbehaving(t *testing.T) {
	e := newMisbehavingEnv(t)
	all := []string{"plan", "export", "import-pull", "import-push", "unpack", "inspect", "pack-push", "import-remote"}
	cases := []struct {
		mode fakeregistry.Mode
		name string
		cmds []string
		code fault.Kind
		msg  string
		// maxRequests bounds what one command may send.
		maxRequests int64
	}{
		{fakeregistry.Silent, "silent", all, fault.Env, "idle for 1s", 10},
		{fakeregistry.StallManifest, "stall-manifest", []string{"plan", "export", "import-pull", "unpack", "inspect", "import-remote"}, fault.Env, "idle for 1s", 10},
		{fakeregistry.StallBlob, "stall-blob", []string{"plan", "export", "import-pull", "unpack", "inspect", "import-remote"}, fault.Env, "idle for 1s", 20},
		{fakeregistry.StallCommit, "stall-commit", []string{"import-push", "pack-push"}, fault.Env, "idle for 1s", 20},
		{fakeregistry.RedirectLoop, "redirect-loop", all, fault.Env, "redirects", 40},
		{fakeregistry.Error5xx, "5xx", all, fault.Env, "503", 12},
		{fakeregistry.Unauthorized, "401", all, fault.Env, "access denied", 12},
		{fakeregistry.UnauthorizedBearer, "401-bearer", all, fault.Env, "access denied", 12},
		{fakeregistry.WrongBlob, "wrong-blob", []string{"plan", "export", "import-pull", "unpack", "inspect", "import-remote"}, fault.Integrity, "digest|damaged|invalid tar header", 30},
		{fakeregistry.ShortBlob, "short-blob", []string{"plan", "export", "import-pull", "unpack", "inspect", "import-remote"}, fault.Integrity, "bytes|damaged|truncated", 30},
		{fakeregistry.LoseUpload, "lose-upload", []string{"import-push", "import-mount", "pack-push"}, fault.Integrity, "does not hold|not stored", 40},
		{fakeregistry.AlterUpload, "alter-upload", []string{"import-push", "import-mount", "pack-push"}, fault.Integrity, "holds a blob", 40},
		{fakeregistry.AlterManifest, "alter-manifest", []string{"import-push", "pack-push"}, fault.Integrity, "not the pushed", 40},
	}
	for _, c := range cases {
		for _, cmd := range c.cmds {
			t.Run(c.name+"/"+cmd, func(t *testing.T) {
				e.s.SetMode(c.mode)
				defer e.s.SetMode(fakeregistry.Honest)
				start := time.Now()
				code, stderr := diffahRun(t, e.planBytes, e.args(t, cmd)...)
				took := time.Since(start)
				reqs := e.s.Requests.Load()
				t.Logf("exit %d in %v after %d requests: %s", code, took.Round(time.Millisecond), reqs, strings.TrimSpace(stderr))
				if code != int(c.code) {
					t.Errorf("exit %d, want %d", code, c.code)
				}
				said := false
				for _, m := range strings.Split(c.msg, "|") {
					said = said || strings.Contains(stderr, m)
				}
				ref := refOf[cmd]
				if cmd == "import-mount" && (c.mode == fakeregistry.LoseUpload || c.mode == fakeregistry.AlterUpload) {
					// These modes also lie on HEAD about the baseline
					// repository's blobs, so resolve's preflight refuses
					// the baseline before anything is pushed.
					ref = "/app:1"
				}
				if !strings.Contains(stderr, e.h+ref) || !said {
					t.Errorf("stderr does not name %s and say %q", e.h+ref, c.msg)
				}
				if took > 20*time.Second {
					t.Errorf("took %v", took)
				}
				if reqs > c.maxRequests {
					t.Errorf("%d requests, want at most %d", reqs, c.maxRequests)
				}
			})
		}
	}
}

// TestRegistryWrongManifestByDigest: a manifest asked for by digest (an
// index entry, or a reference @sha256:…) whose bytes differ is damage.
func TestRegistryWrongManifestByDigest(t *testing.T) {
	e := newMisbehavingEnv(t)
	d := remoteDigest(t, e.h+"/app:2")
	e.s.SetMode(fakeregistry.WrongManifest)
	code, stderr := diffahRun(t, nil, "plan", "--target", "docker://"+e.h+"/app@"+d, "--baseline", "oci:"+e.fx+"/v1")
	if code != int(fault.Integrity) || !strings.Contains(stderr, e.h+"/app@"+d) || !strings.Contains(stderr, "hashing to") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// An index asked for by tag is served as is; the image chosen from it
	// is fetched by digest, and that one is wrong.
	e.s.SetMode(fakeregistry.Honest)
	skopeo(t, "copy", "--all", "--dest-tls-verify=false", "oci:"+e.fx+"/multi-v2:latest", "docker://"+e.h+"/multi:2")
	e.s.SetMode(fakeregistry.WrongManifest)
	code, stderr = diffahRun(t, nil, "plan", "--platform", "linux/arm64", "--target", "docker://"+e.h+"/multi:2", "--baseline", "oci:"+e.fx+"/multi-v1")
	if code != int(fault.Integrity) || !strings.Contains(stderr, e.h+"/multi:2") || !strings.Contains(stderr, "hashing to") {
		t.Fatalf("index entry: exit %d: %s", code, stderr)
	}
	e.s.SetMode(fakeregistry.Honest)
	if code, stderr = diffahRun(t, nil, "plan", "--platform", "linux/arm64", "--target", "docker://"+e.h+"/multi:2", "--baseline", "oci:"+e.fx+"/multi-v1"); code != 0 {
		t.Fatalf("honest: exit %d: %s", code, stderr)
	}
}

// TestRegistryRetriesBounded: --retry-times bounds every retry path: the
// number of requests grows with it, and stays bounded.
func TestRegistryRetriesBounded(t *testing.T) {
	e := newMisbehavingEnv(t)
	for _, c := range []struct {
		mode fakeregistry.Mode
		cmd  string
		// want0 and want3: the requests with --retry-times 0 and 3
		// (exactly, or at most when want is negative: concurrent
		// uploads stop each other at different points).
		want0, want3 int64
	}{
		// The ping fails: 1 try, then 3 retries.
		{fakeregistry.Error5xx, "inspect", 1, 4},
		// Ping, then POST to start the upload: that one is retried.
		{fakeregistry.Error5xxUpload, "pack-push", 2, 5},
		// Ping, HEAD of the manifest, then per blob (4, concurrently)
		// HEAD and POST per try: at most 2+4*2 and 2+4*4*2.
		{fakeregistry.Error5xxUpload, "import-push", -10, -34},
		// 401 and redirect loops are not retried.
		{fakeregistry.Unauthorized, "inspect", 2, 2},
		{fakeregistry.UnauthorizedBearer, "inspect", 5, 5},
		{fakeregistry.RedirectLoop, "inspect", 10, 10},
	} {
		var counts []int64
		for _, n := range []string{"0", "3"} {
			e.s.SetMode(c.mode)
			args := append(e.args(t, c.cmd), "--retry-times", n)
			code, stderr := diffahRun(t, e.planBytes, args...)
			counts = append(counts, e.s.Requests.Load())
			if code != int(fault.Env) {
				t.Errorf("mode %d %s: exit %d: %s", c.mode, c.cmd, code, stderr)
			}
		}
		e.s.SetMode(fakeregistry.Honest)
		t.Logf("mode %d %s: %d requests without retries, %d with 3", c.mode, c.cmd, counts[0], counts[1])
		for i, want := range []int64{c.want0, c.want3} {
			if got := counts[i]; (want >= 0 && got != want) || (want < 0 && got > -want) {
				t.Errorf("mode %d %s, --retry-times %d: %d requests, want %d (negative: at most)", c.mode, c.cmd, 3*i, got, want)
			}
		}
	}
}

// TestRegistryHugeDocuments: a manifest or config bigger than the limits
// is refused (exit 4) without being read into memory: the real binary's
// peak RSS stays small.
func TestRegistryHugeDocuments(t *testing.T) {
	fx := fixtures(t)
	s := fakeregistry.Start(t)
	bin := buildBinary(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	if code, stderr := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", delta); code != 0 {
		t.Fatal(stderr)
	}
	for _, tag := range []string{fakeregistry.HugeManifestTag, fakeregistry.HugeConfigTag, fakeregistry.LyingConfigTag} {
		for _, cmd := range [][]string{
			{"plan", "--target", "docker://" + s.Host + "/app:" + tag, "--baseline", "oci:" + fx + "/v1"},
			{"export", "--target", "oci:" + fx + "/v2", "--baseline", "docker://" + s.Host + "/app:" + tag, "-o", filepath.Join(work, "x-"+tag)},
			{"import", "--baseline", "docker://" + s.Host + "/app:" + tag, "-o", "oci:" + filepath.Join(work, "i-"+tag) + ":app", delta},
			{"inspect", "docker://" + s.Host + "/app:" + tag},
			{"unpack", "-o", filepath.Join(work, "u-"+tag), "docker://" + s.Host + "/app:" + tag},
		} {
			code, stderr, rss := runMeasured(t, bin, cmd...)
			t.Logf("%s %s: exit %d, peak RSS %d MiB: %s", cmd[0], tag, code, rss>>10, strings.TrimSpace(stderr))
			// A document within the limits that is an image, not a delta
			// artifact, is a usage error for inspect and unpack.
			artifactCmd := cmd[0] == "inspect" || cmd[0] == "unpack"
			if code != int(fault.Integrity) && !(artifactCmd && tag != fakeregistry.HugeManifestTag && code == int(fault.Usage)) {
				t.Errorf("%s %s: exit %d, want %d", cmd[0], tag, code, fault.Integrity)
			}
			if !strings.Contains(stderr, s.Host+"/app:"+tag) {
				t.Errorf("%s %s: the message does not name the reference", cmd[0], tag)
			}
			if rss > 150<<10 {
				t.Errorf("%s %s: peak RSS %d MiB", cmd[0], tag, rss>>10)
			}
		}
	}
}

// runMeasured runs bin under /usr/bin/time -v and returns the exit code,
// stderr (without time's report) and the peak RSS in KiB.
func runMeasured(t *testing.T, bin string, args ...string) (int, string, int64) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Skip("/usr/bin/time not installed")
	}
	return measure(t, bin, args...)
}

func measure(t *testing.T, bin string, args ...string) (int, string, int64) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "time.txt")
	cmd := exec.Command("/usr/bin/time", append([]string{"-v", "-o", report, bin}, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rss int64
	for _, l := range strings.Split(string(rep), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Maximum resident set size (kbytes): "); ok {
			rss, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if rss == 0 {
		t.Fatalf("no RSS in %s", rep)
	}
	return code, errb.String(), rss
}

// TestTimeoutMustBePositive: there is no "wait forever".
func TestTimeoutMustBePositive(t *testing.T) {
	for _, v := range []string{"0s", "-1s"} {
		code, stderr := diffahRun(t, nil, "inspect", "--timeout", v, "docker://127.0.0.1:1/x:y")
		if code != int(fault.Usage) || !strings.Contains(stderr, "--timeout") {
			t.Errorf("--timeout %s: exit %d: %s", v, code, stderr)
		}
	}
}
