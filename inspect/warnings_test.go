package inspect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/diffah/diffah/sidecar"
)

// TestEveryWasteWarning: each kind of waste issue 6 names is warned
// about, in the text and the JSON output: a layer shipped whole that a
// patch could have shrunk, a blob that travels twice, a non-reproducible
// compressed blob that forced a full ship, and a baseline that shares
// almost nothing with the target.
func TestEveryWasteWarning(t *testing.T) {
	lt := "application/vnd.oci.image.layer.v1.tar+gzip"
	s := bundle()
	a, b := &s.Images[0], &s.Images[1]

	// Image b patches the layer image a ships whole: it travels twice.
	base := a.Blobs[2]
	pe := sidecar.PatchEntryName(dg("p-base"))
	b.Blobs[2] = sidecar.Blob{Descriptor: base.Descriptor, Role: sidecar.RoleLayer, DiffID: base.DiffID, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Patch,
		Patch: &sidecar.PatchRef{PatchSpec: sidecar.PatchSpec{Codec: "diffah-tar/1", Recipe: json.RawMessage(`{"format":"gzip","impl":"go","level":6}`),
			Sources: []sidecar.Source{{Descriptor: sidecar.Descriptor{MediaType: lt, Digest: dg("oldbase"), Size: 3 << 20}, DiffID: dg("uoldbase")}}}, Entry: pe, UncompressedSize: 9 << 20}}}
	s.Entries = append(s.Entries, sidecar.Entry{Name: pe, Size: 1 << 20, Digest: dg("p-base")})

	// Image b also ships a zstd copy of a's app layer content (same diffID).
	zd := dg("app-zstd")
	b.Blobs = append(b.Blobs, sidecar.Blob{Descriptor: sidecar.Descriptor{MediaType: lt + "+zstd", Digest: zd, Size: 35 << 20}, Role: sidecar.RoleLayer,
		DiffID: dg("uapp"), Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}, Entry: sidecar.BlobEntryName(zd)})
	s.Entries = append(s.Entries, sidecar.Entry{Name: sidecar.BlobEntryName(zd), Size: 35 << 20, Digest: zd})

	// Image c: its only layer cannot be recompressed, and its baseline
	// shares nothing.
	nd := dg("cli-gzip")
	cm := sidecar.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: dg("mc"), Size: 400}
	s.Images = append(s.Images, sidecar.Image{Name: "svc-c", Target: sidecar.Target{Ref: "oci:./c-v2", Manifest: cm},
		Baseline: &sidecar.Baseline{Ref: "oci:./wrong", ManifestDigest: dg("bmc")},
		Blobs: []sidecar.Blob{
			{Descriptor: cm, Role: sidecar.RoleManifest, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}, Entry: sidecar.BlobEntryName(cm.Digest)},
			{Descriptor: sidecar.Descriptor{MediaType: lt, Digest: nd, Size: 512 << 10}, Role: sidecar.RoleLayer, DiffID: dg("ucli"), Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship,
				Reason: "not in the baseline; ships whole: its compressed blob cannot be reproduced (no candidate matches)"}, Entry: sidecar.BlobEntryName(nd)},
		}})
	s.Entries = append(s.Entries, sidecar.Entry{Name: sidecar.BlobEntryName(cm.Digest), Size: 400, Digest: cm.Digest},
		sidecar.Entry{Name: sidecar.BlobEntryName(nd), Size: 512 << 10, Digest: nd})

	d := FromSidecar(s, false, "", false)
	want := map[string]string{
		"shipped whole, patchable":  "image svc-a: layer " + Short(base.Digest) + " (3.0 MiB) ships whole: a patch",
		"travels twice":             "blob " + Short(base.Digest) + " travels 2 times (full in svc-a, patch in svc-b)",
		"same content twice":        "layer content " + Short(dg("uapp")) + " travels 2 times, compressed differently",
		"non-reproducible":          "image svc-c: layer " + Short(nd) + " (512.0 KiB) ships whole: its compressed blob cannot be reproduced",
		"baseline shares ~ nothing": "image svc-c: the baseline shares almost nothing with the target (0.0% reused, 0.0% saved in all)",
	}
	var text, js bytes.Buffer
	if err := d.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct{ Warnings []string }
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for what, w := range want {
		if !hasWarning(d, w) {
			t.Errorf("%s: no warning containing %q; got:\n  %s", what, w, strings.Join(d.Warnings, "\n  "))
		}
		if !strings.Contains(text.String(), "  - "+w) {
			t.Errorf("%s: not in the text output's warnings", what)
		}
		found := false
		for _, jw := range back.Warnings {
			found = found || strings.Contains(jw, w)
		}
		if !found {
			t.Errorf("%s: not in the JSON warnings", what)
		}
	}
	// The well-used baselines of svc-a and svc-b draw no such warning.
	for _, w := range d.Warnings {
		if strings.Contains(w, "shares almost nothing") && !strings.Contains(w, "svc-c") {
			t.Errorf("unexpected warning: %s", w)
		}
	}
}

// TestNoWasteNoWarning: a delta where everything travels once and
// the big layer is patched has no warnings.
func TestNoWasteNoWarning(t *testing.T) {
	s := bundle()
	// Drop the 3 MiB base shipped whole from both images.
	for i := range s.Images {
		s.Images[i].Blobs = append(s.Images[i].Blobs[:2], s.Images[i].Blobs[3:]...)
	}
	if d := FromSidecar(s, false, "", false); len(d.Warnings) != 0 {
		t.Fatalf("warnings for a delta without waste: %v", d.Warnings)
	}
}
