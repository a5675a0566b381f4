package deliver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/lock"
	"github.com/diffah/diffah/sidecar"
)

func TestCheckNewFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	if err := CheckNewFile("-o", p, false); err != nil {
		t.Fatalf("absent: %v", err)
	}
	os.WriteFile(p, []byte("old"), 0o644)
	err := CheckNewFile("-o", p, false)
	if fault.KindOf(err, 0) != fault.Usage || !strings.Contains(fault.HintOf(err), "--force") {
		t.Fatalf("existing: %v", err)
	}
	if err := CheckNewFile("-o", p, true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if err := CheckNewFile("-o", "-", false); err != nil {
		t.Fatalf("stdout: %v", err)
	}
	// oci: is never refused (a tag is added); the others are.
	outs := map[string]imgref.Ref{"": {Transport: imgref.OCI, Path: dir}}
	if err := CheckNewOutputs(outs, false); err != nil {
		t.Fatalf("oci: %v", err)
	}
	for _, tr := range []string{imgref.OCIArchive, imgref.DockerArchive, imgref.Dir} {
		if err := CheckNewOutputs(map[string]imgref.Ref{"": {Transport: tr, Path: p}}, false); fault.KindOf(err, 0) != fault.Usage {
			t.Errorf("%s: %v", tr, err)
		}
	}
}

// TestClaimFile: an output file is locked and refused when it exists
// (unless force); stdout and a registry are neither.
func TestClaimFile(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "x")
	release, err := ClaimFile(ctx, "-o", p, false, lock.Options{})
	if err != nil {
		t.Fatalf("absent: %v", err)
	}
	if _, err := lock.Acquire(ctx, p, lock.Options{}); fault.KindOf(err, 0) != fault.Env {
		t.Fatalf("claimed output not locked: %v", err)
	}
	release()
	os.WriteFile(p, []byte("old"), 0o644)
	if _, err := ClaimFile(ctx, "-o", p, false, lock.Options{}); fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("existing: %v", err)
	}
	if l, err := lock.Acquire(ctx, p, lock.Options{}); err != nil {
		t.Fatalf("a refused claim stayed locked: %v", err)
	} else {
		l.Release()
	}
	release, err = ClaimFile(ctx, "-o", p, true, lock.Options{})
	if err != nil {
		t.Fatalf("--force: %v", err)
	}
	release()
	for _, out := range []string{"", "-", "docker://localhost:5000/x:1"} {
		release, err := ClaimFile(ctx, "-o", out, false, lock.Options{})
		if err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		release()
	}
}

func TestPlatformMatches(t *testing.T) {
	for _, c := range []struct {
		want, have string
		ok         bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/arm64", "linux/amd64", false},
		{"linux/arm", "linux/arm/v7", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm/v7", "linux/arm", false},
		{"windows/amd64", "linux/amd64", false},
	} {
		if got := platformMatches(c.want, c.have); got != c.ok {
			t.Errorf("platformMatches(%s, %s) = %v", c.want, c.have, got)
		}
	}
}

func TestTargetNameTag(t *testing.T) {
	for ref, want := range map[string]string{
		"docker://reg.local/team/app:2":                            "reg.local/team/app:2",
		"oci:./app-v2:v2":                                          "app:v2",
		"oci:./app-v2":                                             "app:latest",
		"docker-daemon:example.com/app:2":                          "example.com/app:2",
		"docker-daemon:sha256:" + strings.Repeat("b", 64):          "app:latest",
		"docker://reg.local/app@sha256:" + strings.Repeat("a", 64): "app:latest",
	} {
		if got := targetNameTag(&sidecar.Image{Name: "app", Target: sidecar.Target{Ref: ref}}); got != want {
			t.Errorf("%s: %q, want %q", ref, got, want)
		}
	}
}
