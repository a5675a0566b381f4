package imgref

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/testregistry"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost:5000": true, "localhost": true, "127.0.0.1:5000": true, "127.3.4.5": true,
		"[::1]:5000": true, "registry.example.com": false, "10.0.0.1:5000": false, "localhost.example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}

// TestRegistry pushes to and pulls from a real registry on loopback: both
// manifest kinds keep their digests, an index resolves by platform, and an
// unknown tag is an Env error naming the ref.
func TestRegistry(t *testing.T) {
	host := testregistry.Start(t)
	ctx := context.Background()
	o := Options{RetryTimes: 1}
	for i, mt := range []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2} {
		want := fixture(t, mt, "linux/amd64", "reg", "gzip", "tar", "zstd")
		ref := "docker://" + host + "/diffah/app:v" + string(rune('1'+i))
		mustWrite(t, ref, want.image(t), o)
		got := mustOpen(t, ref, o)
		assertSame(t, got, want)
		if got.Platform != "linux/amd64" || got.IndexDigest != "" {
			t.Fatalf("platform %q index %q", got.Platform, got.IndexDigest)
		}
		// By digest, and copied on to a local transport.
		byDigest := "docker://" + host + "/diffah/app@" + sha256Hash(want.raw).String()
		local := "dir:" + t.TempDir() + "/d"
		mustWrite(t, local, mustOpen(t, byDigest, o), Options{})
		assertSame(t, mustOpen(t, local, Options{}), want)
	}

	amd := fixture(t, types.OCIManifestSchema1, "linux/amd64", "amd", "gzip")
	arm := fixture(t, types.OCIManifestSchema1, "linux/arm64/v8", "arm", "gzip")
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd.image(t), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm.image(t), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	r, err := name.ParseReference(host+"/diffah/multi:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	got := mustOpen(t, "docker://"+host+"/diffah/multi:latest", Options{Platform: "linux/arm64"})
	assertSame(t, got, arm)
	if string(got.IndexDigest) != idxDigest.String() || got.Platform != "linux/arm64/v8" {
		t.Fatalf("index %s platform %s", got.IndexDigest, got.Platform)
	}
	_, err = Open(ctx, mustParse(t, "docker://"+host+"/diffah/multi:latest"), Options{Platform: "windows/amd64"})
	if fault.KindOf(err, 0) != fault.Usage || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Fatalf("want usage error listing platforms, got %v", err)
	}

	_, err = Open(ctx, mustParse(t, "docker://"+host+"/diffah/nothing:here"), o)
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "diffah/nothing:here") {
		t.Fatalf("want env error naming the ref, got %v", err)
	}
}

// flaky proxies to a registry, answering 503 to the first fails manifest
// requests.
type flaky struct {
	next  http.Handler
	fails atomic.Int32
	seen  atomic.Int32
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.URL.Path, "/manifests/") {
		f.seen.Add(1)
		if f.fails.Add(-1) >= 0 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
	}
	f.next.ServeHTTP(w, r)
}

func TestRegistryRetries(t *testing.T) {
	host := testregistry.Start(t)
	want := fixture(t, types.OCIManifestSchema1, "linux/amd64", "retry", "gzip")
	mustWrite(t, "docker://"+host+"/diffah/retry:v1", want.image(t), Options{})
	target, _ := url.Parse("http://" + host)
	f := &flaky{next: httputil.NewSingleHostReverseProxy(target)}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ref := mustParse(t, "docker://"+strings.TrimPrefix(srv.URL, "http://")+"/diffah/retry:v1")

	f.fails.Store(2)
	img, err := Open(context.Background(), ref, Options{RetryTimes: 2, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatalf("with 2 retries: %v", err)
	}
	assertSame(t, img, want)

	f.fails.Store(2)
	f.seen.Store(0)
	_, err = Open(context.Background(), ref, Options{RetryTimes: 0})
	if fault.KindOf(err, 0) != fault.Env {
		t.Fatalf("without retries: want env error, got %v", err)
	}
	if n := f.seen.Load(); n != 1 {
		t.Fatalf("without retries the manifest was asked for %d times", n)
	}
}
