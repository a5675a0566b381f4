package deliver

import (
	"regexp"
	"testing"

	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/sidecar"
)

var imageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// FuzzNames: whatever reference a plan or sidecar names, the default
// image name is a valid name and the docker-archive default NAME:TAG is
// one imgref accepts.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"docker://reg.local/app:2", "oci:./app-v2:v2", "oci-archive:x.tar", "dir:./+++", "docker-archive:a.tar:x/y:1", "bogus"} {
		f.Add(s, "app")
	}
	f.Fuzz(func(t *testing.T, ref, name string) {
		if r, err := imgref.Parse(ref); err == nil {
			if n := DefaultName(r); !imageName.MatchString(n) {
				t.Fatalf("DefaultName(%q) = %q", ref, n)
			}
		}
		nt := targetNameTag(&sidecar.Image{Name: name, Target: sidecar.Target{Ref: ref}})
		if _, err := imgref.Parse("docker-archive:x.tar:" + nt); err != nil {
			t.Fatalf("targetNameTag(%q, %q) = %q: %v", ref, name, nt, err)
		}
	})
}
