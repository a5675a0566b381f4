package imgref

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// sniffFixtures writes one image in every local format under a temp dir.
func sniffFixtures(t *testing.T) map[string]string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	v1dir := filepath.Join(filepath.Dir(file), "..", "testdata", "images", "docker-v1")
	img := mustOpen(t, "oci:"+v1dir, Options{})
	defer img.Close()
	dir := t.TempDir()
	paths := map[string]string{
		OCI:           v1dir,
		OCIArchive:    filepath.Join(dir, "img.oci.tar"),
		DockerArchive: filepath.Join(dir, "img.docker.tar"),
		Dir:           filepath.Join(dir, "img.dir"),
	}
	mustWrite(t, "oci-archive:"+paths[OCIArchive], img, Options{})
	mustWrite(t, "docker-archive:"+paths[DockerArchive]+":app:v1", img, Options{})
	mustWrite(t, "dir:"+paths[Dir], img, Options{})
	return paths
}

func TestKind(t *testing.T) {
	paths := sniffFixtures(t)
	for want, p := range paths {
		if got := Kind(p); got != want {
			t.Errorf("Kind(%s) = %q, want %q", p, got, want)
		}
	}
	other := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(other, []byte("hello"), 0o644)
	for _, p := range []string{other, t.TempDir(), "/nonexistent/x", "/dev/null"} {
		if got := Kind(p); got != "" {
			t.Errorf("Kind(%s) = %q, want none", p, got)
		}
	}
}

func TestHintsLookAtTheInput(t *testing.T) {
	paths := sniffFixtures(t)
	cases := []struct{ in, hint string }{
		{"127.0.0.1:5000/app:v2", "did you mean docker://127.0.0.1:5000/app:v2?"},
		{"localhost:5000/team/app", "did you mean docker://localhost:5000/team/app?"},
		{"localhost/app:v1", "did you mean docker://localhost/app:v1?"},
		{"registry.example.com/app:1.0", "did you mean docker://registry.example.com/app:1.0?"},
		{"registry.example.com/app", "did you mean docker://registry.example.com/app?"},
		{"[::1]:5000/app:v2", "did you mean docker://[::1]:5000/app:v2?"},
		{"oc:./app", "did you mean oci:./app?"},
		{"OCI:./app", "did you mean oci:./app?"},
		{"oci-archiv:app.tar", "did you mean oci-archive:app.tar?"},
		{"dockerarchive:app.tar", "did you mean docker-archive:app.tar?"},
		{"dri:./d", "did you mean dir:./d?"},
		{"dockr://reg.local/app:2", "did you mean docker://reg.local/app:2?"},
		{"docker-deamon:app:2", "did you mean docker-daemon:app:2?"},
		{"qwertyuiop:x", "did you mean oci:./qwertyuiop:x?"},
		{paths[OCI], "did you mean oci:" + paths[OCI] + "?"},
		{paths[OCIArchive], "did you mean oci-archive:" + paths[OCIArchive] + "?"},
		{paths[DockerArchive], "did you mean docker-archive:" + paths[DockerArchive] + "?"},
		{paths[Dir], "did you mean dir:" + paths[Dir] + "?"},
		// ./x/y is a path, not a host.
		{"./a.b/app", "did you mean oci:./a.b/app?"},
	}
	for _, tc := range cases {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) accepted", tc.in)
			continue
		}
		if fault.KindOf(err, 0) != fault.Usage {
			t.Errorf("Parse(%q): kind %v, want usage", tc.in, fault.KindOf(err, 0))
		}
		if got := fault.HintOf(err); got != tc.hint {
			t.Errorf("Parse(%q): hint %q, want %q", tc.in, got, tc.hint)
		}
	}
}

func TestOpenNamesWhatThePathIs(t *testing.T) {
	paths := sniffFixtures(t)
	cases := []struct{ ref, hint string }{
		{"oci:" + paths[Dir], "is a dir: image: use dir:" + paths[Dir]},
		{"dir:" + paths[OCI], "is an OCI layout (oci:): use oci:" + paths[OCI]},
		{"docker-archive:" + paths[OCIArchive], "is an OCI archive (oci-archive:): use oci-archive:" + paths[OCIArchive]},
		{"oci-archive:" + paths[DockerArchive], "is a docker save archive (docker-archive:): use docker-archive:" + paths[DockerArchive]},
		{"oci:" + paths[OCIArchive], "is an OCI archive (oci-archive:): use oci-archive:" + paths[OCIArchive]},
		// an archive transport on a directory: what the directory is
		{"oci-archive:" + paths[Dir], "is a dir: image: use dir:" + paths[Dir]},
		{"docker-archive:" + paths[OCI], "is an OCI layout (oci:): use oci:" + paths[OCI]},
	}
	for _, tc := range cases {
		img, err := Open(context.Background(), mustParse(t, tc.ref), Options{})
		if err == nil {
			img.Close()
			t.Errorf("Open(%s) succeeded", tc.ref)
			continue
		}
		if h := fault.HintOf(err); !strings.Contains(h, tc.hint) {
			t.Errorf("Open(%s): %v; hint %q, want it to contain %q", tc.ref, err, h, tc.hint)
		}
	}
}
