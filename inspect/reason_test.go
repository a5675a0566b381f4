package inspect

import (
	"testing"

	"github.com/diffah/diffah/sidecar"
)

// TestNonReproducibleByCode: inspect's non-reproducible warning follows
// the reason code, not the producer's text: a code with any text warns,
// and text that merely mentions it does not when the code says otherwise.
// Files without codes (before sidecar 1.2) still warn from their text.
func TestNonReproducibleByCode(t *testing.T) {
	warns := func(code sidecar.ReasonCode, reason string) bool {
		s := bundle()
		im := &s.Images[0]
		im.Blobs[2].Action, im.Blobs[2].Patch = sidecar.Ship, nil
		im.Blobs[2].ReasonCode, im.Blobs[2].Reason = code, reason
		return hasWarning(FromSidecar(s, false, "", false), "ships whole: its compressed blob cannot be reproduced")
	}
	if !warns(sidecar.ReasonNotReproducible, "shipped whole") {
		t.Error("code not-reproducible with other text: no warning")
	}
	if warns(sidecar.ReasonPatchNotSmaller, "the patch was larger; its compressed blob cannot be reproduced elsewhere") {
		t.Error("code patch-not-smaller warned as non-reproducible from its text")
	}
	if !warns("", "not in the baseline; ships whole: its compressed blob cannot be reproduced (x)") {
		t.Error("a sidecar without codes lost the warning")
	}
}
