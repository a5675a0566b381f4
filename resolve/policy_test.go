package resolve

import (
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/sidecar"
)

// TestPolicy: the one place --strict and partial mode act, from plain
// per-image verdicts to statuses and the run's exit category.
func TestPolicy(t *testing.T) {
	for _, c := range []struct {
		name   string
		found  []verdict
		strict bool
		want   string // statuses, one letter each (o k(skipped) f)
		kind   fault.Kind
	}{
		{"all ready", []verdict{ready, ready}, false, "oo", 0},
		{"all ready strict", []verdict{ready, ready}, true, "oo", 0},
		{"one without baseline", []verdict{ready, noBaseline}, false, "os", 0},
		{"one without baseline strict", []verdict{ready, noBaseline}, true, "os", fault.Partial},
		{"none given", []verdict{noBaseline, noBaseline}, false, "ss", fault.Partial},
		{"wrong baseline skipped", []verdict{ready, baselineLacks}, false, "os", 0},
		{"wrong baseline strict", []verdict{ready, baselineLacks}, true, "of", fault.Integrity},
		{"only a wrong baseline", []verdict{baselineLacks}, false, "f", fault.Integrity},
		{"broken stops all", []verdict{ready, broken}, false, "of", fault.Integrity},
		{"broken and wrong", []verdict{broken, baselineLacks, ready}, false, "ffo", fault.Integrity},
		{"source image skipped", []verdict{noBaseline, sourceSkipped, ready}, false, "sso", 0},
		{"source image skipped strict", []verdict{noBaseline, sourceSkipped, ready}, true, "sso", fault.Partial},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := &Report{}
			var problems []string
			for i, v := range c.found {
				rep.Images = append(rep.Images, ImageReport{Name: string(rune('a' + i))})
				if v != ready {
					problems = append(problems, "problem")
				}
			}
			r := &resolver{sc: &sidecar.Sidecar{}, o: Options{Strict: c.strict}}
			err := r.policy(rep, c.found, problems)
			var got strings.Builder
			for _, im := range rep.Images {
				got.WriteByte(im.Status[0])
			}
			if got.String() != c.want {
				t.Errorf("statuses %s, want %s", got.String(), c.want)
			}
			if k := fault.KindOf(err, 0); k != c.kind || (err == nil) != (c.kind == 0) {
				t.Errorf("err %v (kind %v), want kind %v", err, k, c.kind)
			}
		})
	}
}
