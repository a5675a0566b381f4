package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegistryCrossImage: in a bundle pushed to a registry, an image whose
// base layer comes from another image's baseline (sidecar "from") gets it
// downloaded into the layout, not left for a mount from its own baseline's
// repository, which lacks it; both images arrive byte for byte.
func TestRegistryCrossImage(t *testing.T) {
	fx := fixtures(t)
	p := newProxy(t)
	h := p.host()
	pushFixture(t, fx, "bundle/svc-a-v1", "docker://"+h+"/one:1")
	pushFixture(t, fx, "unrelated", "docker://"+h+"/two:1")
	work := t.TempDir()
	plans := filepath.Join(work, "plans.json")
	one, e := runOut(t, "plan", "--name", "one", "--target", "oci:"+fx+"/bundle/svc-b-v2", "--baseline", "docker://"+h+"/one:1")
	if e != "" {
		t.Fatal(e)
	}
	two, e := runOut(t, "plan", "--name", "two", "--target", "oci:"+fx+"/bundle/svc-a-v2", "--baseline", "docker://"+h+"/two:1")
	if e != "" {
		t.Fatal(e)
	}
	writeFile(t, plans, one+two)
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "pack", "-o", delta, plans); code != 0 {
		t.Fatal(e)
	}
	insp, e := runOut(t, "inspect", "--json", delta)
	if e != "" {
		t.Fatal(e)
	}
	if !strings.Contains(insp, `"from": "one"`) {
		t.Fatalf("no blob of two comes from one's baseline:\n%s", insp)
	}
	if code, e := diffahRun(t, nil, "import", "--baseline", "one=docker://"+h+"/one:1", "--baseline", "two=docker://"+h+"/two:1",
		"-o", "one=docker://"+h+"/one:2", "-o", "two=docker://"+h+"/two:2", delta); code != 0 {
		t.Fatal(e)
	}
	if got, want := remoteDigest(t, h+"/two:2"), indexDigest(t, filepath.Join(fx, "bundle", "svc-a-v2")); got != want {
		t.Fatalf("two: pushed %s, target %s", got, want)
	}
	if got, want := remoteDigest(t, h+"/one:2"), indexDigest(t, filepath.Join(fx, "bundle", "svc-b-v2")); got != want {
		t.Fatalf("one: pushed %s, target %s", got, want)
	}
}

// runOut runs diffah in-process; it returns stdout, and stderr when the
// exit code is not 0.
func runOut(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, nil, &out, &errb); code != 0 {
		return out.String(), fmt.Sprintf("exit %d: %s", code, errb.String())
	}
	return out.String(), ""
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
