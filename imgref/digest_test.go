package imgref

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

// TestDigestBoundary: a digest survives the round trip to ggcr's hash and
// back; a malformed one is an integrity error naming it, never a zero hash.
func TestDigestBoundary(t *testing.T) {
	d := digest.FromString("x")
	h, err := Hash(d, "blob x")
	if err != nil || Digest(h) != d || h.Hex != d.Encoded() {
		t.Fatalf("round trip: %v, %v", h, err)
	}
	if desc, err := Descriptor("m", d, 3, "blob x"); err != nil || desc.Digest != h || desc.Size != 3 || desc.MediaType != "m" {
		t.Fatalf("Descriptor: %+v, %v", desc, err)
	}
	for _, bad := range []digest.Digest{"", "sha256:../../etc", "sha512:" + digest.Digest(strings.Repeat("a", 128)), "nocolon"} {
		if _, err := Hash(bad, "blob y"); fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "blob y") {
			t.Errorf("Hash(%q) = %v, want an integrity error naming blob y", bad, err)
		}
		if _, err := LayerByDigest(nil, bad); fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("LayerByDigest(%q) = %v, want an integrity error", bad, err)
		}
		if _, err := LayerByDiffID(nil, bad); fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("LayerByDiffID(%q) = %v, want an integrity error", bad, err)
		}
		if _, err := Descriptor("m", bad, 1, "blob z"); fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "blob z") {
			t.Errorf("Descriptor(%q) = %v, want an integrity error naming blob z", bad, err)
		}
	}
}
