package imgdiff

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files from the current output")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./imgdiff -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (rerun with -update if the change is intended)\n--- got\n%s--- want\n%s", p, got, want)
	}
}

// envelopeResult has a row of every non-file kind, a value with a tab and
// a newline, and full digests, built by hand so that the golden file does
// not depend on the bytes a gzip implementation emits.
func envelopeResult() *Result {
	d := func(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }
	cs := []Change{
		{TypeLayer, 1, "digest", d('a'), d('b'), DetailChanged},
		{TypeConfig, NoLayer, "config.Labels.note", "one\ttab", "two\nlines", DetailChanged},
		{TypeManifest, NoLayer, "config.digest", d('c'), d('d'), DetailChanged},
		{TypeLayer, 2, "layer", "-", d('e') + " 120B application/vnd.oci.image.layer.v1.tar+gzip", DetailAdded},
		{TypeFile, 2, "/usr/bin/x", "-", d('f') + " 0755 0:0 12B", DetailAdded},
		{TypeConfig, NoLayer, "config.Env.EMPTY", "", "x", DetailChanged},
	}
	return &Result{Changes: cs, Summary: summarize(cs)}
}

func TestWriteTextGolden(t *testing.T) {
	img0, img1 := basePair(t)
	for _, tc := range []struct {
		name string
		r    *Result
	}{
		{"semantic.txt", compare(t, img0, img1, Options{Semantic: true})},
		{"envelope.txt", envelopeResult()},
		{"equal.txt", compare(t, img0, img0, Options{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.r.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, buf.Bytes())
		})
	}
}

func TestWriteTextAbbreviates(t *testing.T) {
	var buf bytes.Buffer
	if err := envelopeResult().WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, strings.Repeat("a", 13)) || !strings.Contains(out, "sha256:aaaaaaaaaaaa…") {
		t.Errorf("digests not abbreviated to 12 hex digits:\n%s", out)
	}
	if strings.Contains(out, "one\ttab") || !strings.Contains(out, `two\nlines`) {
		t.Errorf("control characters not escaped:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("want header + 6 rows, got %d lines", len(lines))
	}
	// Sorted: manifest, config, then layer rows by layer, then files.
	for i, prefix := range []string{"TYPE", "Manifest", "Config", "Config", "Layer ", "Layer ", "File"} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], prefix)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	img0, img1 := basePair(t)
	r := compare(t, img0, img1, Options{})
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema   string  `json:"schema"`
		Equal    *bool   `json:"equal"`
		Semantic *bool   `json:"semantic"`
		Summary  Summary `json:"summary"`
		Changes  []struct {
			Type   string `json:"type"`
			Layer  *int   `json:"layer"`
			Name   string `json:"name"`
			Input0 string `json:"input0"`
			Input1 string `json:"input1"`
			Detail string `json:"detail"`
		} `json:"changes"`
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decoding WriteJSON output: %v", err)
	}
	if doc.Schema != JSONSchema || doc.Equal == nil || *doc.Equal || doc.Semantic == nil || *doc.Semantic {
		t.Errorf("header = %q equal=%v semantic=%v", doc.Schema, doc.Equal, doc.Semantic)
	}
	if len(doc.Changes) != len(r.Changes) || doc.Summary.Total != len(r.Changes) {
		t.Fatalf("%d changes in JSON, %d in result, summary %+v", len(doc.Changes), len(r.Changes), doc.Summary)
	}
	for i, c := range doc.Changes {
		want := r.Changes[i]
		layer := NoLayer
		if c.Layer != nil {
			layer = *c.Layer
		}
		got := Change{c.Type, layer, c.Name, c.Input0, c.Input1, c.Detail}
		if got != want {
			t.Errorf("change %d: JSON %+v, result %+v", i, got, want)
		}
		if want.Layer == NoLayer && c.Layer != nil {
			t.Errorf("change %d: layer present for a change not in a layer", i)
		}
	}
	// Digests stay whole in JSON.
	var full bool
	for _, c := range doc.Changes {
		if strings.Contains(c.Input0, sum("one")) {
			full = true
		}
	}
	if !full {
		t.Error("full content digest of /app/a missing from JSON")
	}

	// Equal images still give an array, never null.
	buf.Reset()
	if err := compare(t, img0, img0, Options{Semantic: true}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"changes": []`) || !strings.Contains(buf.String(), `"equal": true`) {
		t.Errorf("equal images JSON:\n%s", buf.String())
	}
}
