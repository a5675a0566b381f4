package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// curVersion is the version New writes (a sidecar that needs nothing
// of 1.2), as it appears in JSON.
var curVersion = fmt.Sprintf(`"%d.%d"`, Major, minorBase)

// withReusedLayer adds a reused layer carrying a recipe (since 1.2).
func withReusedLayer(s *Sidecar, recipe string) *Sidecar {
	im := &s.Images[0]
	im.Blobs = append(im.Blobs, Blob{Descriptor: Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d("l3"), Size: 70},
		Role: RoleLayer, DiffID: d("u3"), Decision: Decision[PatchRef]{Action: Reuse, Recipe: json.RawMessage(recipe)}})
	return s
}

func TestReusedLayerRecipe(t *testing.T) {
	b, err := withReusedLayer(valid(), `{"format":"gzip","impl":"go","level":6}`).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, got.Images[0].Blobs[4].Recipe); err != nil || compact.String() != `{"format":"gzip","impl":"go","level":6}` {
		t.Fatalf("recipe %s (%v)", got.Images[0].Blobs[4].Recipe, err)
	}
	// Written without a recipe, a reused blob has no "recipe" key at all,
	// so a 1.1 reader reads it as before.
	b, err = valid().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"recipe"`); n != 1 { // the patch's own
		t.Fatalf("unexpected recipe keys in %s", b)
	}

	bad := map[string]func(s *Sidecar){
		"on a shipped layer": func(s *Sidecar) { s.Images[0].Blobs[2].Recipe = json.RawMessage(`{"format":"gzip"}`) },
		"on the config":      func(s *Sidecar) { s.Images[0].Blobs[1].Recipe = json.RawMessage(`{"format":"gzip"}`) },
		"without a diffID":   func(s *Sidecar) { withReusedLayer(s, `{"format":"gzip"}`); s.Images[0].Blobs[4].DiffID = "" },
		"not an object":      func(s *Sidecar) { withReusedLayer(s, `"gzip"`) },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			s := valid()
			mutate(s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "recipe belongs only to a reused layer") {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}
