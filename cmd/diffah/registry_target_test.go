package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffah/diffah/imgref"
)

// skopeo runs skopeo against the loopback registry (plain HTTP).
func skopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	var out, errb bytes.Buffer
	cmd := exec.Command("skopeo", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

func skopeoDigest(t *testing.T, ref string) string {
	raw := skopeo(t, "inspect", "--tls-verify=false", "--raw", ref)
	s := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestRegistryTarget plans, exports and imports with the target in a
// real registry (Debian's docker-registry on loopback, images pushed with
// skopeo) and the baseline both there and in a local layout. The target's
// changed layers are patch candidates, which used to hang: recompression
// trials opened one remote blob several times at once and blocked on
// go-containerregistry's limit on concurrent fetches. Now each blob is
// fetched once per command, and the rebuilt image pushed back has the
// target's digest (checked with skopeo).
func TestRegistryTarget(t *testing.T) {
	fx := fixtures(t)
	p := newProxy(t)
	h := p.host()
	for _, c := range []struct{ v1, v2 string }{{"v1", "v2"}, {"docker-v1", "docker-v2"}, {"zstd-v1", "zstd-v2"}} {
		t.Run(c.v2, func(t *testing.T) {
			repo := "docker://" + h + "/" + c.v2
			skopeo(t, "copy", "--dest-tls-verify=false", skopeoSource(t, fx, c.v1), repo+":1")
			skopeo(t, "copy", "--dest-tls-verify=false", skopeoSource(t, fx, c.v2), repo+":2")
			want := skopeoDigest(t, repo+":2")
			for _, base := range []string{repo + ":1", "oci:" + fx + "/" + c.v1} {
				p.mu.Lock()
				p.fetched = map[string]int{}
				p.mu.Unlock()
				start := time.Now()
				out, e := runOut(t, "plan", "--timeout", "20s", "--target", repo+":2", "--baseline", base)
				if time.Since(start) > time.Minute {
					t.Fatalf("plan took %v", time.Since(start))
				}
				var pl struct {
					Blobs []struct {
						Action string `json:"action"`
					} `json:"blobs"`
				}
				if err := json.Unmarshal([]byte(out), &pl); err != nil {
					t.Fatalf("plan against %s: %v\n%s", base, err, e)
				}
				patched := 0
				for _, b := range pl.Blobs {
					if b.Action == "patch" {
						patched++
					}
				}
				if patched != 2 {
					t.Fatalf("plan against %s: %d patched layers, want 2:\n%s", base, patched, out)
				}
				p.fetchedOnce(t, "plan against "+base)
				delta := filepath.Join(t.TempDir(), "d.dlt")
				if code, e := diffahRun(t, nil, "export", "--target", repo+":2", "--baseline", base, "-o", delta); code != 0 {
					t.Fatal(e)
				}
				p.fetchedOnce(t, "export against "+base)
				out3 := repo + ":3"
				if code, e := diffahRun(t, nil, "import", "--baseline", base, "-o", out3, delta); code != 0 {
					t.Fatal(e)
				}
				if got := skopeoDigest(t, out3); got != want {
					t.Fatalf("baseline %s: pushed %s, target is %s", base, got, want)
				}
			}
		})
	}
}

// skopeoSource names fixture dir for skopeo. A Docker-type image does
// not come out of an OCI layout through skopeo 1.9
// (testdata/images/README.md): it goes through dir:, written by imgref.
func skopeoSource(t *testing.T, fx, dir string) string {
	t.Helper()
	if !strings.HasPrefix(dir, "docker") {
		return "oci:" + filepath.Join(fx, dir) + ":latest"
	}
	src, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: filepath.Join(fx, dir)}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := filepath.Join(t.TempDir(), dir)
	if err := imgref.Write(context.Background(), imgref.Ref{Transport: imgref.Dir, Path: out}, src, imgref.Options{}); err != nil {
		t.Fatal(err)
	}
	return "dir:" + out
}

// fetchedOnce fails the test if a blob was downloaded more than once
// since the last call, and resets the count.
func (p *countingProxy) fetchedOnce(t *testing.T, what string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.fetched) == 0 {
		t.Errorf("%s: no blob fetched from the registry (is the proxy counting?)", what)
	}
	for d, n := range p.fetched {
		if n > 1 {
			t.Errorf("%s: blob %s fetched %d times", what, d, n)
		}
	}
	p.fetched = map[string]int{}
}
