package main

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffah/diffah/fault"
)

// TestAuditKilledResolveState kills resolve with SIGKILL at random points
// and checks, after each kill and before the rerun, that the layout is
// either exactly as unpack left it or complete and verified; then that a
// rerun completes it and leaves no temporary sibling.
func TestAuditKilledResolveState(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	fx := fixtures(t)
	bin := buildBinary(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	mustRun(t, bin, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "--name", "app", "-o", delta)
	archive, _ := os.ReadFile(delta)
	rng := rand.New(rand.NewSource(5))
	complete, unchanged := 0, 0
	for i := 0; i < 30; i++ {
		parent := filepath.Join(work, "r", strings.Repeat("x", i+1))
		os.MkdirAll(parent, 0o755)
		dir := filepath.Join(parent, "lay")
		mustRun(t, bin, bytes.NewReader(archive), "unpack", "-o", dir)
		before := treeSum(t, dir)
		killAfter(t, bin, time.Duration(rng.Intn(90000))*time.Microsecond, "resolve", "--baseline", "oci:"+fx+"/v1", dir)
		if _, err := os.Stat(filepath.Join(dir, "diffah", "sidecar.json")); err == nil {
			if treeSum(t, dir) != before {
				t.Fatalf("round %d: a killed resolve changed the unpacked layout in place", i)
			}
			unchanged++
		} else {
			checkImage(t, bin, fx, "oci:"+dir+":app")
			complete++
		}
		mustRun(t, bin, nil, "resolve", "--baseline", "oci:"+fx+"/v1", dir)
		checkImage(t, bin, fx, "oci:"+dir+":app")
		leftovers(t, parent)
	}
	t.Logf("after a kill: %d layouts unchanged, %d complete", unchanged, complete)
}

// TestAuditResolveDiskFull: resolve on a filesystem that holds the
// unpacked layout but not the rebuilt image fails with the environment
// code and "no space left", and leaves the layout exactly as it was.
func TestAuditResolveDiskFull(t *testing.T) {
	fx := fixtures(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	archive, _ := os.ReadFile(delta)
	small := smallFS(t, "80k")
	lay := filepath.Join(small, "lay")
	if code, e := diffahRun(t, archive, "unpack", "-o", lay); code != 0 {
		t.Fatalf("unpack into the small filesystem: exit %d: %s", code, e)
	}
	before := treeSum(t, lay)
	code, e := diffahRun(t, nil, "resolve", "--baseline", "oci:"+fx+"/v1", lay)
	if code != int(fault.Env) || !strings.Contains(e, "no space left") {
		t.Fatalf("resolve: exit %d: %s", code, e)
	}
	if treeSum(t, lay) != before {
		t.Fatal("a failed resolve changed the layout")
	}
	if got := names(t, small); strings.Join(got, ",") != "lay" {
		t.Fatalf("left in the small filesystem: %v", got)
	}
	// The same layout resolves once there is room.
	big := filepath.Join(work, "lay")
	if out, err := exec.Command("cp", "-a", lay, big).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if code, e := diffahRun(t, nil, "resolve", "--baseline", "oci:"+fx+"/v1", big); code != 0 {
		t.Fatalf("resolve with room: exit %d: %s", code, e)
	}
}
