package main

import (
	"context"
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

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/testregistry"
)

// countingProxy sits in front of the real registry, counts blob uploads
// and mounts, and can be told to fail requests (a registry going away).
type countingProxy struct {
	srv      *httptest.Server
	uploads  atomic.Int64 // completed blob uploads (PUT …/blobs/uploads/…)
	mounts   atomic.Int64
	mu       sync.Mutex
	fetched  map[string]int // blob GETs by digest
	failNext int            // fail this many upload requests with 503
	down     bool
}

func newProxy(t *testing.T) *countingProxy {
	host := testregistry.Start(t)
	target, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &countingProxy{fetched: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isUpload := strings.Contains(r.URL.Path, "/blobs/uploads/")
		p.mu.Lock()
		fail := p.down || (isUpload && p.failNext > 0)
		if fail && !p.down {
			p.failNext--
		}
		p.mu.Unlock()
		if fail {
			http.Error(w, "registry unavailable", http.StatusServiceUnavailable)
			return
		}
		if isUpload && r.Method == http.MethodPut {
			p.uploads.Add(1)
		}
		if isUpload && r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
			p.mounts.Add(1)
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			p.mu.Lock()
			p.fetched[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *countingProxy) host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func pushFixture(t *testing.T, fx, dir, ref string) {
	t.Helper()
	src, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: filepath.Join(fx, dir)}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r, err := imgref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := imgref.Write(context.Background(), r, src, imgref.Options{}); err != nil {
		t.Fatal(err)
	}
}

func remoteDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest.String()
}

func indexDigest(t *testing.T, dir string) string {
	t.Helper()
	img, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: dir}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	d, _ := img.Digest()
	return d.String()
}

// TestRegistryRoundTrip: the baseline lives in a registry; the delta is
// planned against it, and import pushes the rebuilt image uploading only
// what the registry lacks.
func TestRegistryRoundTrip(t *testing.T) {
	fx := fixtures(t)
	p := newProxy(t)
	h := p.host()
	pushFixture(t, fx, "v1", "docker://"+h+"/app:1")
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "docker://"+h+"/app:1", "--name", "app", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	before := p.uploads.Load()
	p.mu.Lock()
	p.fetched = map[string]int{}
	p.mu.Unlock()
	if code, e := diffahRun(t, nil, "import", "--baseline", "docker://"+h+"/app:1", "-o", "docker://"+h+"/app:2", delta); code != 0 {
		t.Fatal(e)
	}
	// The reused base layer stays in the registry: read lazily, it is
	// never downloaded; only patch sources are.
	v2, _ := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: filepath.Join(fx, "v2")}, imgref.Options{})
	m, _ := v2.Manifest()
	v2.Close()
	p.mu.Lock()
	if n := p.fetched[m.Layers[0].Digest.String()]; n != 0 {
		t.Errorf("the reused base layer was downloaded %d times", n)
	}
	p.mu.Unlock()
	if got, want := remoteDigest(t, h+"/app:2"), indexDigest(t, filepath.Join(fx, "v2")); got != want {
		t.Fatalf("pushed %s, target is %s", got, want)
	}
	// v2 = base (in the registry already) + 2 changed layers + config.
	if n := p.uploads.Load() - before; n != 3 {
		t.Fatalf("%d blob uploads, want 3 (config and two changed layers; the shared base exists)", n)
	}
	// A second repository in the same registry: the shared layer is
	// mounted, not uploaded again.
	before, mounts := p.uploads.Load(), p.mounts.Load()
	if code, e := diffahRun(t, nil, "import", "--baseline", "docker://"+h+"/app:1", "-o", "docker://"+h+"/other:2", delta); code != 0 {
		t.Fatal(e)
	}
	if up, mo := p.uploads.Load()-before, p.mounts.Load()-mounts; up != 3 || mo != 1 {
		t.Fatalf("second repository: %d uploads and %d mounts, want 3 and 1 (the base layer mounted from app)", up, mo)
	}
	if remoteDigest(t, h+"/other:2") != indexDigest(t, filepath.Join(fx, "v2")) {
		t.Fatal("second push differs")
	}
}

// TestRegistryBundle pushes a three-image bundle to a registry.
func TestRegistryBundle(t *testing.T) {
	fx := fixtures(t)
	p := newProxy(t)
	h := p.host()
	work := t.TempDir()
	var plans []byte
	args := []string{"import"}
	for _, s := range []string{"svc-a", "svc-b", "svc-c"} {
		pushFixture(t, fx, "bundle/"+s+"-v1", "docker://"+h+"/"+s+":1")
		code, _ := diffahRun(t, nil, "plan", "--name", s, "--target", "oci:"+fx+"/bundle/"+s+"-v2", "--baseline", "docker://"+h+"/"+s+":1")
		if code != 0 {
			t.Fatal("plan failed")
		}
		var out strings.Builder
		if c := run([]string{"plan", "--name", s, "--target", "oci:" + fx + "/bundle/" + s + "-v2", "--baseline", "docker://" + h + "/" + s + ":1"}, strings.NewReader(""), &out, os.Stderr); c != 0 {
			t.Fatal("plan")
		}
		plans = append(plans, out.String()...)
		args = append(args, "--baseline", s+"=docker://"+h+"/"+s+":1", "-o", s+"=docker://"+h+"/"+s+":2")
	}
	delta := filepath.Join(work, "b.dlt")
	if code, e := diffahRun(t, plans, "pack", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	if code, e := diffahRun(t, nil, append(args, delta)...); code != 0 {
		t.Fatal(e)
	}
	for _, s := range []string{"svc-a", "svc-b", "svc-c"} {
		if remoteDigest(t, h+"/"+s+":2") != indexDigest(t, filepath.Join(fx, "bundle", s+"-v2")) {
			t.Fatalf("%s differs", s)
		}
	}
}

// TestRegistryGoesAway: a push that hits a failing registry either
// succeeds through retries or fails with an environment error naming the
// reference; never a partial image under the tag.
func TestRegistryGoesAway(t *testing.T) {
	fx := fixtures(t)
	p := newProxy(t)
	h := p.host()
	pushFixture(t, fx, "v1", "docker://"+h+"/app:1")
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	// Transient: two failed upload requests, retries on.
	p.mu.Lock()
	p.failNext = 2
	p.mu.Unlock()
	if code, e := diffahRun(t, nil, "import", "--retry-times", "4", "--retry-delay", "10ms", "--baseline", "oci:"+fx+"/v1", "-o", "docker://"+h+"/app:2", delta); code != 0 {
		t.Fatalf("retries did not recover: %s", e)
	}
	if remoteDigest(t, h+"/app:2") != indexDigest(t, filepath.Join(fx, "v2")) {
		t.Fatal("pushed image differs")
	}
	// Gone for good: a clear environment error, and no tag.
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	code, e := diffahRun(t, nil, "import", "--retry-times", "1", "--retry-delay", "10ms", "--baseline", "oci:"+fx+"/v1", "-o", "docker://"+h+"/app:3", delta)
	if code != int(fault.Env) || !strings.Contains(e, h+"/app:3") {
		t.Fatalf("exit %d, stderr %q: want exit %d naming the reference", code, e, fault.Env)
	}
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
	r, _ := name.ParseReference(h+"/app:3", name.Insecure)
	if _, err := remote.Head(r); err == nil {
		t.Fatal("a tag exists after a failed push")
	}
}

// TestArchiveAsArtifact: the delta archive itself travels through a
// registry: pack -o docker://, then inspect, unpack and import from it.
func TestArchiveAsArtifact(t *testing.T) {
	fx := fixtures(t)
	p := newProxy(t)
	h := p.host()
	work := t.TempDir()
	var plan strings.Builder
	if c := run([]string{"plan", "--name", "app", "--target", "oci:" + fx + "/v2", "--baseline", "oci:" + fx + "/v1"}, strings.NewReader(""), &plan, os.Stderr); c != 0 {
		t.Fatal("plan")
	}
	for _, compress := range []string{"none", "zstd"} {
		ref := "docker://" + h + "/deltas:app-" + compress
		if code, e := diffahRun(t, []byte(plan.String()), "pack", "--compress", compress, "-o", ref); code != 0 {
			t.Fatal(e)
		}
		var out strings.Builder
		if c := run([]string{"inspect", "--json", ref}, strings.NewReader(""), &out, os.Stderr); c != 0 || !strings.Contains(out.String(), `"name": "app"`) {
			t.Fatalf("inspect %s: %d %s", ref, c, out.String())
		}
		dir := filepath.Join(work, "u-"+compress)
		if code, e := diffahRun(t, nil, "unpack", "-o", dir, ref); code != 0 {
			t.Fatal(e)
		}
		if code, e := diffahRun(t, nil, "import", "--baseline", "oci:"+fx+"/v1", "-o", "oci:"+filepath.Join(work, "i-"+compress)+":app", ref); code != 0 {
			t.Fatal(e)
		}
		if indexDigest(t, filepath.Join(work, "i-"+compress)) != indexDigest(t, filepath.Join(fx, "v2")) {
			t.Fatal("imported image differs")
		}
	}
	// An image is not a delta artifact.
	pushFixture(t, fx, "v1", "docker://"+h+"/app:1")
	code, e := diffahRun(t, nil, "unpack", "-o", filepath.Join(work, "x"), "docker://"+h+"/app:1")
	if code != int(fault.Usage) || !strings.Contains(e, "not a diffah delta artifact") {
		t.Fatalf("exit %d: %s", code, e)
	}
	// A missing artifact is an environment error naming it.
	code, e = diffahRun(t, nil, "unpack", "-o", filepath.Join(work, "y"), "docker://"+h+"/deltas:nope")
	if code != int(fault.Env) || !strings.Contains(e, "deltas:nope") {
		t.Fatalf("exit %d: %s", code, e)
	}
}
