package sidecar

import (
	"encoding/json"
	"testing"
)

// TestSetVersionSyncPoints: a recipe with sync points makes the sidecar
// 1.3; without them the version stays what the rest needs.
func TestSetVersionSyncPoints(t *testing.T) {
	for _, c := range []struct {
		recipe string
		want   string
	}{
		{`{"format":"gzip","impl":"go","level":6}`, "1.2"},
		{`{"format":"gzip","impl":"go","level":6,"sync":[]}`, "1.2"},
		{`{"format":"gzip","impl":"go","level":6,"sync":[{"in":2097152,"out":700000}]}`, "1.3"},
	} {
		s := &Sidecar{Images: []Image{{Blobs: []Blob{{Decision: Decision[PatchRef]{Action: Patch, Patch: &PatchRef{PatchSpec: PatchSpec{Codec: "diffah-tar/2", Recipe: json.RawMessage(c.recipe)}}}}}}}}
		s.SetVersion()
		if s.Version != c.want {
			t.Errorf("%s: version %s, want %s", c.recipe, s.Version, c.want)
		}
	}
	if RecipeHasSync(nil) || RecipeHasSync(json.RawMessage(`not json`)) {
		t.Fatal("no recipe has no sync points")
	}
}
