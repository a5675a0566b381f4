package imgref

import (
	"strings"
	"testing"
)

// FuzzParseRegistry: a docker:// string is a registry reference that
// round-trips through String, or an error; anything else is a file name.
func FuzzParseRegistry(f *testing.F) {
	for _, s := range []string{"docker://reg.local/app:2", "docker://", "app.dlt", "-", "", "docker://127.0.0.1:5000/a@sha256:" + strings.Repeat("0", 64), "oci:./x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok, err := ParseRegistry(s)
		if IsRegistry(s) != ok {
			t.Fatalf("%q: IsRegistry %v, ParseRegistry ok=%v", s, IsRegistry(s), ok)
		}
		if !strings.HasPrefix(s, "docker://") {
			if ok || err != nil {
				t.Fatalf("%q: not a registry reference, got ok=%v err=%v", s, ok, err)
			}
			return
		}
		if ok == (err != nil) {
			t.Fatalf("%q: ok=%v err=%v", s, ok, err)
		}
		if ok && (r.Transport != Docker || r.String() != s) {
			t.Fatalf("%q: parsed %+v, prints %q", s, r, r.String())
		}
	})
}
