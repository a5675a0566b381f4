package layout

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

func TestCheckDigest(t *testing.T) {
	good := digest.Digest("sha256:" + "ab12000000000000000000000000000000000000000000000000000000000000")
	if err := CheckDigest(good, "x"); err != nil {
		t.Fatalf("good digest refused: %v", err)
	}
	for _, d := range []digest.Digest{
		"", "sha256:", "sha256:../../x", "sha256:../../../etc/passwd",
		"sha256:AB12000000000000000000000000000000000000000000000000000000000000",
		"sha256:ab1200000000000000000000000000000000000000000000000000000000000",
		"sha256:ab120000000000000000000000000000000000000000000000000000000000000",
		"sha512:" + "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
		"md5:d41d8cd98f00b204e9800998ecf8427e", "ab12000000000000000000000000000000000000000000000000000000000000",
		"sha256:ab12/00000000000000000000000000000000000000000000000000000000000",
	} {
		err := CheckDigest(d, "blob")
		if err == nil {
			t.Errorf("CheckDigest(%q) accepted", d)
			continue
		}
		if k := fault.KindOf(err, 0); k != fault.Integrity {
			t.Errorf("CheckDigest(%q): kind %v, want integrity", d, k)
		}
	}
}
