package sidecar

import (
	"encoding/json"
	"strings"
	"testing"
)

// fleetSidecar is valid() plus an image "two" whose layer is patched
// against layer l1 of "app", which app ships (a target-layer source).
func fleetSidecar() *Sidecar {
	s := valid()
	app := s.Images[0]
	man := Descriptor{MediaType: app.Target.Manifest.MediaType, Digest: d("m2"), Size: 100}
	l1 := app.Blobs[2]
	patch := d("patch2")
	s.Images = append(s.Images, Image{
		Name:   "two",
		Target: Target{Ref: "oci:./two", Manifest: man},
		Blobs: []Blob{
			{Descriptor: man, Role: RoleManifest, Decision: Decision[PatchRef]{Action: Ship}, Entry: BlobEntryName(man.Digest)},
			app.Blobs[1],
			{Descriptor: Descriptor{MediaType: l1.MediaType, Digest: d("t1"), Size: 60}, Role: RoleLayer, DiffID: d("tu1"), Decision: Decision[PatchRef]{Action: Patch,
				Patch: &PatchRef{PatchSpec: PatchSpec{Codec: BundleTarCodec, Recipe: json.RawMessage(`{"format":"gzip","impl":"go","level":6}`),
					Sources: []Source{{Descriptor: l1.Descriptor, DiffID: l1.DiffID, Target: "app"}}}, Entry: PatchEntryName(patch), UncompressedSize: 900}}},
		},
	})
	s.Entries = append(s.Entries, Entry{Name: BlobEntryName(man.Digest), Size: 100, Digest: man.Digest}, Entry{Name: PatchEntryName(patch), Size: 30, Digest: patch})
	s.SetVersion()
	return s
}

func TestTargetSources(t *testing.T) {
	s := fleetSidecar()
	if s.Version != "1.7" {
		t.Fatalf("version %s, want 1.7 for a diffah-tar-bundle/4 patch", s.Version)
	}
	// Its diffah-tar/3 form needs only what target-layer sources added.
	v3 := fleetSidecar()
	v3.Images[1].Blobs[2].Patch.Codec = BundleTarCodecV3
	if v3.SetVersion(); v3.Version != "1.5" || v3.Validate() != nil {
		t.Fatalf("version %s (%v), want 1.5 for a target-layer source", v3.Version, v3.Validate())
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if src := got.Images[1].Blobs[2].Patch.Sources[0]; src.Target != "app" || src.Image != "" {
		t.Fatalf("source after a round trip: %+v", src)
	}
	// An image's own earlier layer may be a source too.
	s = fleetSidecar()
	two := &s.Images[1]
	two.Blobs = append(two.Blobs, Blob{Descriptor: Descriptor{MediaType: two.Blobs[2].MediaType, Digest: d("t2"), Size: 70}, Role: RoleLayer, DiffID: d("tu2"), Decision: Decision[PatchRef]{Action: Patch,
		Patch: &PatchRef{PatchSpec: PatchSpec{Codec: BundleTarCodec, Recipe: two.Blobs[2].Patch.Recipe,
			Sources: []Source{{Descriptor: two.Blobs[2].Descriptor, DiffID: two.Blobs[2].DiffID, Target: "two"}}}, Entry: two.Blobs[2].Patch.Entry, UncompressedSize: 900}}})
	if err := s.Validate(); err != nil {
		t.Fatalf("an earlier layer of the same image as source: %v", err)
	}
}

func TestTargetSourcesRejected(t *testing.T) {
	src := func(s *Sidecar) *Source { return &s.Images[1].Blobs[2].Patch.Sources[0] }
	tests := []struct {
		name, want string
		edit       func(s *Sidecar)
	}{
		{"unknown image", `which is not in this archive`, func(s *Sidecar) { src(s).Target = "nope" }},
		{"not a layer of that image", `is not a shipped or patched layer of image "app"`, func(s *Sidecar) { src(s).Digest = d("other") }},
		{"other diffID", `with that diffID`, func(s *Sidecar) { src(s).DiffID = d("other") }},
		{"a reused layer", `is not a shipped or patched layer`, func(s *Sidecar) {
			s.Images[0].Blobs[2].Action, s.Images[0].Blobs[2].Entry = Reuse, ""
			s.Entries = append(s.Entries[:1], s.Entries[2:]...)
		}},
		{"itself", `does not come before it`, func(s *Sidecar) {
			b := s.Images[1].Blobs[2]
			*src(s) = Source{Descriptor: b.Descriptor, DiffID: b.DiffID, Target: "two"}
		}},
		{"a later layer", `does not come before it`, func(s *Sidecar) {
			s.Images[0], s.Images[1] = s.Images[1], s.Images[0]
		}},
		{"both a baseline and a target", `names both a baseline`, func(s *Sidecar) { src(s).Image = "app" }},
		{"tar codec", `which only codecs "diffah-tar-bundle/4" and "diffah-tar-bundle/3" may read`, func(s *Sidecar) { s.Images[1].Blobs[2].Patch.Codec = "diffah-tar/2" }},
		{"bundle codec without a target", `without a target-layer source`, func(s *Sidecar) { src(s).Target = "" }},
		{"older version", `needs format 1.5, this sidecar says 1.4`, func(s *Sidecar) { s.Version = "1.4" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fleetSidecar()
			tc.edit(s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
