package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// smallFS mounts a tmpfs of the given size (root only; skipped elsewhere).
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Fatalf("%s not empty after a failed run: %v", dir, names)
	}
}

// TestDiskFull: a full disk gives a clear environment error and leaves
// nothing behind, for unpack, import and pack -o.
func TestDiskFull(t *testing.T) {
	fx := fixtures(t)
	work := t.TempDir()
	delta := filepath.Join(work, "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--intra-layer", "off", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	archive, _ := os.ReadFile(delta)
	small := smallFS(t, "48k")

	code, e := diffahRun(t, archive, "unpack", "-o", filepath.Join(small, "out"))
	if code != int(fault.Env) || !strings.Contains(e, "no space left") {
		t.Fatalf("unpack: exit %d: %s", code, e)
	}
	emptyDir(t, small)

	code, e = diffahRun(t, nil, "import", "--baseline", "oci:"+fx+"/v1", "-o", "oci:"+filepath.Join(small, "img")+":app", delta)
	if code != int(fault.Env) || !strings.Contains(e, "no space left") {
		t.Fatalf("import: exit %d: %s", code, e)
	}
	emptyDir(t, small)

	code, e = diffahRun(t, nil, "export", "--intra-layer", "off", "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", filepath.Join(small, "d.dlt"))
	if code != int(fault.Env) || !strings.Contains(e, "no space left") {
		t.Fatalf("export -o: exit %d: %s", code, e)
	}
	emptyDir(t, small)
}

// TestResolveDiskFull: resolve on a filesystem that holds the
// unpacked layout but not the rebuilt image fails with the environment
// code and "no space left", and leaves the layout exactly as it was.
func TestResolveDiskFull(t *testing.T) {
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
