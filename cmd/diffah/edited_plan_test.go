package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// TestEditedPlanPushesNothing: a plan whose baseline is in a registry is
// checked against that registry's image, and a plan that cannot produce
// its target, packed to a registry (-o docker://), is refused with exit 4
// before anything is uploaded: no blob, no tag. (edited_plan.txtar covers
// files and stdout.)
func TestEditedPlanPushesNothing(t *testing.T) {
	fx := fixtures(t)
	p := newProxy(t)
	h := p.host()
	pushFixture(t, fx, "v1", "docker://"+h+"/app:1")
	honest, e := runOut(t, "plan", "--target", "oci:"+fx+"/v2", "--baseline", "docker://"+h+"/app:1")
	if e != "" {
		t.Fatal(e)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(honest), &m); err != nil {
		t.Fatal(err)
	}
	blobs := m["blobs"].([]any)
	lied := blobs[3].(map[string]any)
	if lied["action"] != "patch" {
		t.Fatalf("unexpected fixture plan: blob 3 is %v", lied["action"])
	}
	// Reuse of a layer the registry's baseline lacks, totals kept true.
	lied["action"] = "reuse"
	delete(lied, "patch")
	tot := m["totals"].(map[string]any)
	size := lied["size"].(float64)
	tot["patched"] = tot["patched"].(float64) - 1
	tot["patchBlobBytes"] = tot["patchBlobBytes"].(float64) - size
	tot["reused"] = tot["reused"].(float64) + 1
	tot["reuseBytes"] = tot["reuseBytes"].(float64) + size
	edited, _ := json.Marshal(m)
	plan := filepath.Join(t.TempDir(), "plan.json")
	writeFile(t, plan, string(edited))

	before := p.uploads.Load()
	code, stderr := diffahRun(t, nil, "pack", "-o", "docker://"+h+"/deltas:app", plan)
	if code != int(fault.Integrity) {
		t.Fatalf("exit %d, want %d: %s", code, fault.Integrity, stderr)
	}
	if !strings.Contains(stderr, lied["digest"].(string)) || !strings.Contains(stderr, ".blobs[3].action") || !strings.Contains(stderr, "docker://"+h+"/app:1") {
		t.Fatalf("the error does not name the blob, the field and the baseline: %s", stderr)
	}
	if n := p.uploads.Load() - before; n != 0 {
		t.Fatalf("%d blob uploads for a refused plan", n)
	}
	resp, err := http.Get("http://" + h + "/v2/deltas/manifests/app")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the tag exists after a refused pack (HTTP %d)", resp.StatusCode)
	}

	// The honest plan, checked against the same registry, packs.
	writeFile(t, plan, honest)
	if code, stderr := diffahRun(t, nil, "pack", "-o", "docker://"+h+"/deltas:app", plan); code != 0 {
		t.Fatalf("honest plan: exit %d: %s", code, stderr)
	}
}
