package sidecar

import "testing"

func TestLegacyReasonCode(t *testing.T) {
	for _, c := range []struct {
		code   ReasonCode
		reason string
		want   ReasonCode
	}{
		{ReasonPatched, "its compressed blob cannot be reproduced", ReasonPatched}, // a code wins over text
		{"", "not in the baseline; ships whole: its compressed blob cannot be reproduced (x)", ReasonNotReproducible},
		{"", "not in the baseline", ""},
		{"", "", ""},
	} {
		if got := LegacyReasonCode(c.code, c.reason); got != c.want {
			t.Errorf("LegacyReasonCode(%q, %q) = %q, want %q", c.code, c.reason, got, c.want)
		}
	}
}
