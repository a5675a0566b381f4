package imgref

import (
	"context"
	"strings"
	"testing"

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
