package plan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// seedPlan is a real plan with a patch (testdata/seeds/v1-v2.json).
func seedPlan(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seeds", "v1-v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("seed does not parse: %v", err)
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func blobAt(m map[string]any, i int) map[string]any { return m["blobs"].([]any)[i].(map[string]any) }

func patched(m map[string]any) map[string]any {
	for _, b := range m["blobs"].([]any) {
		if b.(map[string]any)["action"] == "patch" {
			return b.(map[string]any)
		}
	}
	return nil
}

// TestParseRefusesHostileFields: sizes that would overflow the totals,
// digests that would become paths, recipes that would allocate gigabytes —
// refused by Parse as usage errors (a plan is the user's input), never a
// panic or an overflowed total.
func TestParseRefusesHostileFields(t *testing.T) {
	if patched(seedPlan(t)) == nil {
		t.Fatal("seed plan has no patch")
	}
	big := json.Number("9223372036854775807")
	for _, c := range []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"layer size max-int64", func(m map[string]any) { blobAt(m, 2)["size"] = big }, "larger than any real blob"},
		{"layer size negative", func(m map[string]any) { blobAt(m, 2)["size"] = json.Number("-5") }, "negative size"},
		{"config size 2^62", func(m map[string]any) { blobAt(m, 1)["size"] = json.Number("4611686018427387904") }, "larger than any real blob"},
		{"source size", func(m map[string]any) {
			patched(m)["patch"].(map[string]any)["sources"].([]any)[0].(map[string]any)["size"] = big
		}, "larger than any real blob"},
		{"baseline layer size", func(m map[string]any) {
			m["baseline"].(map[string]any)["layers"].([]any)[0].(map[string]any)["size"] = json.Number("-1")
		}, "negative size"},
		{"digest path", func(m map[string]any) { blobAt(m, 2)["digest"] = "sha256:../../etc/passwd" }, "malformed"},
		{"digest no colon", func(m map[string]any) { blobAt(m, 2)["digest"] = "nocolon" }, "only sha256"},
		{"diffID path", func(m map[string]any) { patched(m)["diffID"] = "sha256:../x" }, "malformed"},
		{"source digest", func(m map[string]any) {
			patched(m)["patch"].(map[string]any)["sources"].([]any)[0].(map[string]any)["digest"] = "sha512:" + strings.Repeat("a", 128)
		}, "only sha256"},
		{"config digest", func(m map[string]any) { m["target"].(map[string]any)["config"] = "x" }, "only sha256"},
		{"recipe bomb", func(m map[string]any) {
			patched(m)["patch"].(map[string]any)["recipe"] = map[string]any{"format": "gzip", "impl": "pgzip", "level": 5, "blockSize": 64 << 20, "blocks": 1024}
		}, "not supported"},
		{"recipe invalid level", func(m map[string]any) {
			patched(m)["patch"].(map[string]any)["recipe"] = map[string]any{"format": "gzip", "impl": "go", "level": 12}
		}, "level 12 is not supported"},
		{"recipe unknown field", func(m map[string]any) {
			patched(m)["patch"].(map[string]any)["recipe"] = map[string]any{"format": "none", "window": 1}
		}, "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := seedPlan(t)
			c.edit(m)
			b, _ := json.Marshal(m)
			_, err := Parse(b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if k := fault.KindOf(err, 0); k != fault.Usage {
				t.Fatalf("kind %v, want usage", k)
			}
		})
	}
}
