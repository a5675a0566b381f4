package imgref

import (
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

func TestParse(t *testing.T) {
	dgst := "sha256:" + strings.Repeat("ab", 32)
	good := []struct {
		in   string
		want Ref
	}{
		{"oci:./app", Ref{Transport: OCI, Path: "./app"}},
		{"oci:/abs/app:v2", Ref{Transport: OCI, Path: "/abs/app", Tag: "v2"}},
		{"oci:app:example.com/app:1.0", Ref{Transport: OCI, Path: "app", Tag: "example.com/app:1.0"}},
		{"oci-archive:app.tar", Ref{Transport: OCIArchive, Path: "app.tar"}},
		{"oci-archive:app.tar:latest", Ref{Transport: OCIArchive, Path: "app.tar", Tag: "latest"}},
		{"docker-archive:f.tar", Ref{Transport: DockerArchive, Path: "f.tar"}},
		{"docker-archive:f.tar:name:tag", Ref{Transport: DockerArchive, Path: "f.tar", Tag: "name:tag"}},
		{"docker-archive:f.tar:localhost:5000/a/b:v1", Ref{Transport: DockerArchive, Path: "f.tar", Tag: "localhost:5000/a/b:v1"}},
		{"dir:./d", Ref{Transport: Dir, Path: "./d"}},
		{"dir:/x:y", Ref{Transport: Dir, Path: "/x:y"}},
		{"docker://localhost:5000/a/b:v1", Ref{Transport: Docker, Path: "localhost:5000/a/b:v1"}},
		{"docker://localhost:5000/a/b@" + dgst, Ref{Transport: Docker, Path: "localhost:5000/a/b@" + dgst}},
		{"docker://busybox", Ref{Transport: Docker, Path: "busybox"}},
	}
	for _, tc := range good {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.in {
				t.Fatalf("String() = %q, want %q", s, tc.in)
			}
		})
	}

	bad := []struct {
		in, hint string
	}{
		{"", "oci:./dir"},
		{"./app", "did you mean oci:./app?"},
		{"app", "did you mean oci:./app?"},
		{"/srv/app.tar", "oci-archive:/srv/app.tar or docker-archive:/srv/app.tar"},
		{"oci:", "oci:PATH[:TAG]"},
		{"oci::tag", "oci:PATH[:TAG]"},
		{"oci:dir:", "tag"},
		{"oci:dir:bad tag", "tag"},
		{"oci-archive:", "oci-archive:PATH"},
		{"docker-archive:", "docker-archive:FILE"},
		{"docker-archive:f.tar:name", "NAME:TAG"},
		{"docker-archive:f.tar:name@" + dgst, "NAME:TAG"},
		{"dir:", "dir:DIR"},
		{"docker://", "docker://localhost:5000"},
		{"docker://UPPER/Case:tag", "docker://HOST"},
		{"docker:busybox", "did you mean docker://busybox?"},
		{"podman:x", "did you mean oci:./podman:x?"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.in, func(t *testing.T) {
			_, err := Parse(tc.in)
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if k := fault.KindOf(err, 0); k != fault.Usage {
				t.Fatalf("kind %v, want usage: %v", k, err)
			}
			if h := fault.HintOf(err); !strings.Contains(h, tc.hint) {
				t.Fatalf("hint %q does not mention %q (err %v)", h, tc.hint, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"oci:./a:b", "docker-archive:f.tar:n:t", "docker://localhost:5000/a@sha256:" + strings.Repeat("0", 64), "dir:x", "oci-archive:a.tar", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if fault.KindOf(err, 0) != fault.Usage {
				t.Fatalf("Parse(%q): error without usage kind: %v", s, err)
			}
			return
		}
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(String()) of %q: %v", s, err)
		}
		if again != r {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, r)
		}
	})
}
