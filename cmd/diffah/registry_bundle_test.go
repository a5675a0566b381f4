package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/testregistry"
)

var bundleServices = []string{"svc-a", "svc-b", "svc-c"}

// bundleArchive plans the three bundle services against baselines under
// baseRef(svc) and packs them into one archive.
func bundleArchive(t *testing.T, fx string, baseRef func(string) string) string {
	t.Helper()
	var plans strings.Builder
	for _, s := range bundleServices {
		if c := run([]string{"plan", "--name", s, "--target", "oci:" + fx + "/bundle/" + s + "-v2", "--baseline", baseRef(s)}, strings.NewReader(""), &plans, os.Stderr); c != 0 {
			t.Fatalf("plan %s: exit %d", s, c)
		}
	}
	delta := filepath.Join(t.TempDir(), "bundle.dlt")
	if code, e := diffahRun(t, []byte(plans.String()), "pack", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	return delta
}

// TestRegistryBundleUploadsOnlyMissing: a bundle of three images sharing a base
// layer, baselines in a registry, pushed back to it. Every manifest digest
// equals its target's; only what the registry lacks is uploaded; the
// shared base is never downloaded, and is mounted (not uploaded) into
// repositories that lack it.
func TestRegistryBundleUploadsOnlyMissing(t *testing.T) {
	fx := fixtures(t)
	p := newProxy(t)
	h := p.host()
	for _, s := range bundleServices {
		pushFixture(t, fx, "bundle/"+s+"-v1", "docker://"+h+"/"+s+":1")
	}
	delta := bundleArchive(t, fx, func(s string) string { return "docker://" + h + "/" + s + ":1" })
	base := manifestOf(t, filepath.Join(fx, "bundle", "svc-a-v2")).Layers[0].Digest.String()

	importTo := func(repo func(string) string) (uploads, mounts int64) {
		t.Helper()
		args := []string{"import"}
		for _, s := range bundleServices {
			args = append(args, "--baseline", s+"=docker://"+h+"/"+s+":1", "-o", s+"=docker://"+h+"/"+repo(s))
		}
		u0, m0 := p.uploads.Load(), p.mounts.Load()
		p.mu.Lock()
		p.fetched = map[string]int{}
		p.mu.Unlock()
		if code, e := diffahRun(t, nil, append(args, delta)...); code != 0 {
			t.Fatalf("import: exit %d: %s", code, e)
		}
		p.mu.Lock()
		if n := p.fetched[base]; n != 0 {
			t.Errorf("the shared base layer %s was downloaded %d times; a registry baseline is read lazily", base, n)
		}
		// Each image's patch source (its v1 app layer) is needed, once.
		for _, s := range bundleServices {
			src := manifestOf(t, filepath.Join(fx, "bundle", s+"-v1")).Layers[1].Digest.String()
			if n := p.fetched[src]; n != 1 {
				t.Errorf("%s: patch source %s fetched %d times, want 1", s, src, n)
			}
		}
		p.mu.Unlock()
		for _, s := range bundleServices {
			if got, want := remoteDigest(t, h+"/"+repo(s)), indexDigest(t, filepath.Join(fx, "bundle", s+"-v2")); got != want {
				t.Errorf("%s: pushed %s, target is %s", s, got, want)
			}
		}
		return p.uploads.Load() - u0, p.mounts.Load() - m0
	}

	// Same repositories: config and app layer of each image are new; the
	// base is there already.
	if up, mo := importTo(func(s string) string { return s + ":2" }); up != 6 || mo != 0 {
		t.Errorf("push into the baselines' repositories: %d uploads, %d mounts; want 6 (config + app layer per image) and 0", up, mo)
	}
	// New repositories on the same registry: the base is mounted from each
	// baseline's repository; config and app layer already exist in the
	// registry but not in these repositories, so they are uploaded.
	if up, mo := importTo(func(s string) string { return "prod/" + s + ":2" }); up != 6 || mo != 3 {
		t.Errorf("push into new repositories: %d uploads, %d mounts; want 6 and 3 (the base mounted once per image)", up, mo)
	}
	// The registry's own API agrees: the base blob is in every new repository.
	for _, s := range bundleServices {
		resp, err := http.Head("http://" + h + "/v2/prod/" + s + "/blobs/" + base)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("prod/%s lacks the mounted base: %v %v", s, err, resp)
		}
	}
}

// killingProxy forwards to a real registry and kills the registry process
// right after the first blob upload of a push completes.
type killingProxy struct {
	srv     *httptest.Server
	reg     *testregistry.Server
	armed   atomic.Bool
	uploads atomic.Int64
	// restartAfter, when > 0, starts the registry again after this long.
	restartAfter time.Duration
	restarted    chan error
	once         sync.Once
	commit       sync.Mutex
}

func newKillingProxy(t *testing.T) *killingProxy {
	reg := testregistry.StartServer(t, testregistry.Config{})
	target, _ := url.Parse("http://" + reg.Host)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = nil
	k := &killingProxy{reg: reg, restarted: make(chan error, 1)}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		commit := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
		if !commit {
			rp.ServeHTTP(w, r)
			return
		}
		// Commits pass one at a time, so the kill never lands while the
		// registry moves a blob into place: a registry killed there can
		// keep a half-linked blob that it answers 500 for ever after,
		// which no client can repair.
		k.commit.Lock()
		defer k.commit.Unlock()
		rp.ServeHTTP(w, r)
		k.uploads.Add(1)
		if k.armed.Load() {
			k.once.Do(func() {
				reg.Stop()
				if k.restartAfter > 0 {
					go func() {
						time.Sleep(k.restartAfter)
						k.restarted <- reg.Restart()
					}()
				}
			})
		}
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// TestRegistryStoppedMidPush stops the real registry process in the
// middle of a push (after its first blob landed). With retries and the
// registry back within them, the push completes with the right digest;
// without it, the error is an environment error naming the reference, and
// once the registry is back no tag exists (the manifest goes last).
func TestRegistryStoppedMidPush(t *testing.T) {
	fx := fixtures(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	want := indexDigest(t, filepath.Join(fx, "v2"))

	t.Run("recovers", func(t *testing.T) {
		k := newKillingProxy(t)
		k.restartAfter = 300 * time.Millisecond
		k.armed.Store(true)
		h := strings.TrimPrefix(k.srv.URL, "http://")
		// Retries wait 100, 200, 400, 800 ms...: the registry is back in time.
		code, e := diffahRun(t, nil, "import", "--retry-times", "6", "--retry-delay", "100ms", "--baseline", "oci:"+fx+"/v1", "-o", "docker://"+h+"/app:2", delta)
		if err := <-k.restarted; err != nil {
			t.Fatal(err)
		}
		if code != 0 {
			t.Fatalf("push through a registry restart: exit %d: %s", code, e)
		}
		if got := remoteDigest(t, k.reg.Host+"/app:2"); got != want {
			t.Fatalf("pushed %s, target is %s", got, want)
		}
	})

	t.Run("fails cleanly", func(t *testing.T) {
		k := newKillingProxy(t)
		k.armed.Store(true)
		h := strings.TrimPrefix(k.srv.URL, "http://")
		code, e := diffahRun(t, nil, "import", "--retry-times", "1", "--retry-delay", "10ms", "--baseline", "oci:"+fx+"/v1", "-o", "docker://"+h+"/app:3", delta)
		if code != int(fault.Env) || !strings.Contains(e, h+"/app:3") {
			t.Fatalf("exit %d, stderr %q: want exit %d naming the reference", code, e, fault.Env)
		}
		if k.uploads.Load() < 1 {
			t.Fatal("the registry was never stopped mid-push")
		}
		if err := k.reg.Restart(); err != nil {
			t.Fatal(err)
		}
		r, _ := name.ParseReference(k.reg.Host+"/app:3", name.Insecure)
		if _, err := remote.Head(r); err == nil {
			t.Fatal("a tag exists after a push that failed midway")
		}
		// The rerun completes it.
		if code, e := diffahRun(t, nil, "import", "--baseline", "oci:"+fx+"/v1", "-o", "docker://"+k.reg.Host+"/app:3", delta); code != 0 {
			t.Fatal(e)
		}
		if got := remoteDigest(t, k.reg.Host+"/app:3"); got != want {
			t.Fatalf("rerun pushed %s, target is %s", got, want)
		}
	})
}

// the test user's password is "s3cret"; the hash was made with libxcrypt:
// perl -e 'print crypt("s3cret", q($2b$05$abcdefghijklmnopqrstuu))'
const testHtpasswd = "diffah:$2b$05$abcdefghijklmnopqrstuuLK7U1u6pVRmL7L1BBM2aS35PSZnDXlK\n"

// TestRegistryScripts runs the scripts in testdata/registry-script with $REG, a plain registry, and $AUTHREG, one that
// requires basic auth (user diffah, password in $AUTH, a docker config
// "auth" value for ~/.docker/config.json).
func TestRegistryScripts(t *testing.T) {
	fx := fixtures(t)
	reg := testregistry.Start(t)
	authReg := testregistry.StartServer(t, testregistry.Config{Htpasswd: testHtpasswd})
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	testscript.Run(t, testscript.Params{
		Dir: "testdata/registry-script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("FIX", fx)
			env.Setenv("ROOT", root)
			env.Setenv("REG", reg)
			env.Setenv("AUTHREG", authReg.Host)
			env.Setenv("AUTH", base64.StdEncoding.EncodeToString([]byte("diffah:s3cret")))
			env.Setenv("BADAUTH", base64.StdEncoding.EncodeToString([]byte("diffah:wrong")))
			return nil
		},
		Cmds:                scriptCmds,
		RequireExplicitExec: true,
	})
}

// manifestOf reads the manifest of the image in an OCI layout.
func manifestOf(t *testing.T, dir string) *v1.Manifest {
	t.Helper()
	img, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: dir}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
