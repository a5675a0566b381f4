package resolve

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestReportPrinting: the text form is one line per image (counts for a
// resolved image, the first line of the reason for the others); the log
// form is one record per image at a level by status; the JSON form
// decodes back to the report.
func TestReportPrinting(t *testing.T) {
	d := digest.FromString("m")
	rep := &Report{Dir: "out", Images: []ImageReport{
		{Name: "app", Status: StatusOK, ManifestDigest: d, Shipped: 1, Reused: 2, Patched: 3},
		{Name: "db", Status: StatusSkipped, ManifestDigest: d, Reason: "no baseline\nsecond line"},
		{Name: "web", Status: StatusFailed, ManifestDigest: d, Reason: "blob x: bad"},
	}}
	var text bytes.Buffer
	rep.WriteText(&text)
	want := "OK       app " + d.String() + " (1 shipped, 2 reused, 3 patched)\n" +
		"SKIPPED  db " + d.String() + ": no baseline\n" +
		"FAILED   web " + d.String() + ": blob x: bad\n"
	if text.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", text.String(), want)
	}
	var logs bytes.Buffer
	rep.LogJSON(&logs)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	levels := []string{"INFO", "WARN", "ERROR"}
	if len(lines) != 3 {
		t.Fatalf("log: %d records: %s", len(lines), logs.String())
	}
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["level"] != levels[i] || rec["image"] != rep.Images[i].Name {
			t.Errorf("log record %d: %s (%v)", i, l, err)
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Images) != 3 || back.Images[1].Reason != rep.Images[1].Reason || !strings.HasSuffix(js.String(), "}\n") {
		t.Errorf("json: %s (%v)", js.String(), err)
	}
}
