package plan

import (
	"context"
	"testing"

	"github.com/diffah/diffah/sidecar"
)

// TestEveryBlobHasAReasonCode: every decision carries its code beside the
// text, and the code agrees with the action; the code survives Marshal and
// Parse.
func TestEveryBlobHasAReasonCode(t *testing.T) {
	ti, bi := fixtureImages(t)
	for _, intra := range []string{IntraAuto, IntraOff} {
		p, err := Compute(context.Background(), Input{Ref: "oci:v2", Platform: ti.Platform, Image: ti}, &BaselineInput{Ref: "oci:v1", Image: bi},
			Options{Name: "v2", IntraLayer: intra, Jobs: 2})
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if p, err = Parse(b); err != nil {
			t.Fatal(err)
		}
		for i, b := range p.Blobs {
			var ok bool
			switch b.Action {
			case sidecar.Reuse:
				ok = b.ReasonCode == sidecar.ReasonInBaseline
			case sidecar.Patch:
				ok = b.ReasonCode == sidecar.ReasonPatched
			default:
				ok = b.ReasonCode != "" && b.ReasonCode != sidecar.ReasonPatched && b.ReasonCode != sidecar.ReasonInBaseline
			}
			if !ok {
				t.Errorf("intra %s: blob %d (%s, %q): reason code %q", intra, i, b.Action, b.Reason, b.ReasonCode)
			}
		}
	}
}
