package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/sidecar"
)

// pair builds a baseline with layers base+old and a target with base+new:
// one layer reusable, one changed.
func pair(t *testing.T) (target, baseline v1.Image) {
	t.Helper()
	base, err := random.Layer(2048, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := random.Layer(4096, "application/vnd.oci.image.layer.v1.tar+gzip")
	nw, _ := random.Layer(4096, "application/vnd.oci.image.layer.v1.tar+gzip")
	mk := func(ls ...v1.Layer) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, ls...)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	return mk(base, nw), mk(base, old)
}

func TestComputeDecisions(t *testing.T) {
	target, baseline := pair(t)
	p, err := Compute(context.Background(), Input{Ref: "oci:t", Image: target},
		&BaselineInput{Ref: "oci:b", Image: baseline}, Options{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Blobs) != 4 {
		t.Fatalf("%d blobs, want manifest+config+2 layers", len(p.Blobs))
	}
	want := []string{sidecar.Ship, sidecar.Ship, sidecar.Reuse}
	for i, a := range want {
		if p.Blobs[i].Action != a {
			t.Errorf("blob %d (%s): action %s, want %s (%s)", i, p.Blobs[i].Role, p.Blobs[i].Action, a, p.Blobs[i].Reason)
		}
	}
	// The changed layer is either a patch (reproducible compressor) or
	// ships with a reason saying why not.
	last := p.Blobs[3]
	if last.Action == sidecar.Patch {
		if len(last.Patch.Sources) != 1 || last.Patch.Recipe == nil {
			t.Fatalf("patch without sources or recipe: %+v", last.Patch)
		}
	} else if !strings.Contains(last.Reason, "not in the baseline") {
		t.Fatalf("changed layer: %s, %q", last.Action, last.Reason)
	}
	if p.Totals.Blobs != 4 || p.Totals.Reused != 1 {
		t.Fatalf("totals %+v", p.Totals)
	}
	raw, _ := target.RawManifest()
	if !bytes.Equal(p.Target.Raw, raw) {
		t.Fatal("raw manifest not kept verbatim")
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.Marshal()
	if !bytes.Equal(b, b2) {
		t.Fatal("plan does not round-trip")
	}
}

func TestComputeIntraOffAndManifestOnly(t *testing.T) {
	target, baseline := pair(t)
	p, err := Compute(context.Background(), Input{Ref: "oci:t", Image: target},
		&BaselineInput{Ref: "oci:b", Image: baseline}, Options{Name: "app", IntraLayer: IntraOff})
	if err != nil {
		t.Fatal(err)
	}
	if p.Blobs[3].Action != sidecar.Ship {
		t.Fatalf("intra-layer off still patched")
	}
	raw, _ := baseline.RawManifest()
	p, err = Compute(context.Background(), Input{Ref: "oci:t", Image: target},
		&BaselineInput{ManifestFile: "m.json", RawManifest: raw}, Options{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Blobs[2].Action != sidecar.Reuse || p.Blobs[3].Action != sidecar.Ship || !strings.Contains(p.Blobs[3].Reason, "--baseline-manifest") {
		t.Fatalf("manifest-only baseline: %+v", p.Blobs)
	}
	if p.Baseline.ManifestFile != "m.json" {
		t.Fatal("manifest file not recorded")
	}
}

func TestComputeErrors(t *testing.T) {
	target, _ := pair(t)
	_, err := Compute(context.Background(), Input{Ref: "oci:t", Image: target}, nil, Options{Name: "../bad"})
	if fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("bad name: %v", err)
	}
	_, err = Compute(context.Background(), Input{Ref: "oci:t", Image: target},
		&BaselineInput{ManifestFile: "x.json", RawManifest: []byte(`{"manifests":[]}`)}, Options{Name: "a"})
	if err == nil || !strings.Contains(err.Error(), "index") {
		t.Fatalf("index as baseline manifest: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	target, baseline := pair(t)
	p, err := Compute(context.Background(), Input{Ref: "oci:t", Image: target},
		&BaselineInput{Ref: "oci:b", Image: baseline}, Options{Name: "app", IntraLayer: IntraOff})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := p.Marshal()
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"garbage", []byte("nope"), "not valid JSON"},
		{"two plans", append(append([]byte{}, good...), good...), "more than one plan"},
		{"kind", edit(func(m map[string]any) { m["kind"] = "x" }), "not a diffah plan"},
		{"major", edit(func(m map[string]any) { m["version"] = "9.0" }), "unsupported plan version 9.0"},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = 1 }), `unknown field "extra"`},
		{"raw tampered", edit(func(m map[string]any) { m["target"].(map[string]any)["raw"] = "e30=" }), "target manifest bytes"},
		{"totals lie", edit(func(m map[string]any) { m["totals"].(map[string]any)["shipBytes"] = 1 }), "totals"},
		{"action", edit(func(m map[string]any) { m["blobs"].([]any)[2].(map[string]any)["action"] = "steal" }), "unknown action"},
		{"intra", edit(func(m map[string]any) { m["intraLayer"] = "maybe" }), "intraLayer"},
		{"wrong type", edit(func(m map[string]any) { m["blobs"] = "many" }), "cannot unmarshal"},
		{"deep nesting", []byte(`{"kind":"diffah-plan","version":"1.0","name":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), "nested deeper"},
		{"duplicate key", bytes.Replace(good, []byte(`"name"`), []byte(`"name": "evil", "name"`), 1), "appears twice"},
		{"case-folded key", bytes.Replace(good, []byte(`"intraLayer"`), []byte(`"IntraLayer"`), 1), "unknown field"},
		{"huge", append(append([]byte(`{"kind":"diffah-plan","version":"1.0","name":"`), bytes.Repeat([]byte("a"), MaxSize+1)...), '"', '}'), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if fault.KindOf(err, 0) != fault.Usage {
				t.Fatalf("kind = %v", fault.KindOf(err, 0))
			}
		})
	}
}

func TestDecoderStream(t *testing.T) {
	target, baseline := pair(t)
	var buf bytes.Buffer
	for _, name := range []string{"a", "b"} {
		p, err := Compute(context.Background(), Input{Ref: "oci:t", Image: target},
			&BaselineInput{Ref: "oci:b", Image: baseline}, Options{Name: name, IntraLayer: IntraOff})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := p.Marshal()
		buf.Write(b)
	}
	d := NewDecoder(&buf)
	var names []string
	for {
		p, err := d.Next()
		if err != nil {
			break
		}
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("names %v", names)
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*.json"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"kind":"diffah-plan","version":"1.0"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("parsed plan does not marshal: %v", err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
	})
}
