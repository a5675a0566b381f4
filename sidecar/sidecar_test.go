package sidecar

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
)

func d(s string) digest.Digest { return digest.FromString(s) }

// valid returns a small consistent sidecar: one image, manifest and a
// layer shipped, config reused, one layer patched.
func valid() *Sidecar {
	man := Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: d("m"), Size: 100}
	patch := d("patch")
	s := New("diffah test")
	s.Images = []Image{{
		Name:     "app",
		Target:   Target{Ref: "oci:./v2", Manifest: man},
		Baseline: &Baseline{Ref: "oci:./v1", ManifestDigest: d("base")},
		Blobs: []Blob{
			{Descriptor: man, Role: RoleManifest, Decision: Decision[PatchRef]{Action: Ship}, Entry: BlobEntryName(man.Digest)},
			{Descriptor: Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: d("c"), Size: 10}, Role: RoleConfig, Decision: Decision[PatchRef]{Action: Reuse}},
			{Descriptor: Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d("l1"), Size: 50}, Role: RoleLayer, DiffID: d("u1"), Decision: Decision[PatchRef]{Action: Ship}, Entry: BlobEntryName(d("l1"))},
			{Descriptor: Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d("l2"), Size: 5000}, Role: RoleLayer, DiffID: d("u2"), Decision: Decision[PatchRef]{Action: Patch,
				Patch: &PatchRef{PatchSpec: PatchSpec{Codec: "diffah-tar/1", Recipe: json.RawMessage(`{"format":"gzip","impl":"go","level":6}`),
					Sources: []Source{{Descriptor: Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: d("s"), Size: 4000}, DiffID: d("su")}}}, Entry: PatchEntryName(patch), UncompressedSize: 9000}}},
		},
	}}
	s.Entries = []Entry{
		{Name: BlobEntryName(man.Digest), Size: 100, Digest: man.Digest},
		{Name: BlobEntryName(d("l1")), Size: 50, Digest: d("l1")},
		{Name: PatchEntryName(patch), Size: 300, Digest: patch},
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := valid()
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Sidecar)
		raw    func(b []byte) []byte
		want   string
	}{
		{name: "wrong kind", mutate: func(s *Sidecar) { s.Kind = "other" }, want: "not a diffah delta"},
		{name: "major version", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(curVersion), []byte(`"2.0"`), 1) }, want: "unsupported format version 2.0"},
		{name: "bad version", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(curVersion), []byte(`"1.x"`), 1) }, want: "MAJOR.MINOR"},
		{name: "leading zero version", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(curVersion), []byte(`"01.0"`), 1) }, want: "MAJOR.MINOR"},
		{name: "unknown field", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(`"kind"`), []byte(`"bogus":1,"kind"`), 1) }, want: `unknown field "bogus"`},
		{name: "trailing data", raw: func(b []byte) []byte { return append(b, []byte("{}")...) }, want: "after top-level value|trailing data"},
		{name: "key case", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(`"images"`), []byte(`"Images"`), 1) }, want: `unknown field "Images"`},
		{name: "dup key", raw: func(b []byte) []byte { return bytes.Replace(b, []byte(`"kind"`), []byte(`"tool":"x","kind"`), 1) }, want: "appears twice"},
		{name: "deep", raw: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"kind"`), []byte(`"tool":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`,"kind"`), 1)
		}, want: "nested deeper"},
		{name: "not json", raw: func([]byte) []byte { return []byte("hello") }, want: "not a JSON object"},
		{name: "no images", mutate: func(s *Sidecar) { s.Images = nil }, want: "no images"},
		{name: "bad name", mutate: func(s *Sidecar) { s.Images[0].Name = "../x" }, want: "not valid"},
		{name: "dup name", mutate: func(s *Sidecar) { s.Images = append(s.Images, s.Images[0]) }, want: "used twice"},
		{name: "sha512 digest", mutate: func(s *Sidecar) {
			s.Images[0].Blobs[1].Digest = digest.Digest("sha512:" + strings.Repeat("ab", 64))
		}, want: "only sha256"},
		{name: "entry name mismatch", mutate: func(s *Sidecar) { s.Entries[1].Name = "blobs/sha256/../../etc" }, want: "does not match its digest"},
		{name: "dup entry", mutate: func(s *Sidecar) { s.Entries = append(s.Entries, s.Entries[0]) }, want: "listed twice"},
		{name: "unused entry", mutate: func(s *Sidecar) {
			s.Entries = append(s.Entries, Entry{Name: BlobEntryName(d("x")), Size: 1, Digest: d("x")})
		}, want: "not used"},
		{name: "entry size lies", mutate: func(s *Sidecar) { s.Entries[1].Size = 51 }, want: "blob says"},
		{name: "negative size", mutate: func(s *Sidecar) { s.Images[0].Blobs[1].Size = -1 }, want: "negative size"},
		{name: "unknown action", mutate: func(s *Sidecar) { s.Images[0].Blobs[2].Action = "steal" }, want: "unknown action"},
		{name: "manifest reused", mutate: func(s *Sidecar) {
			s.Images[0].Blobs[0].Action, s.Images[0].Blobs[0].Entry = Reuse, ""
			s.Entries = s.Entries[1:]
		}, want: "must be shipped"},
		{name: "roles out of order", mutate: func(s *Sidecar) { s.Images[0].Blobs[1].Role = RoleLayer }, want: "want \"config\""},
		{name: "patch no sources", mutate: func(s *Sidecar) { s.Images[0].Blobs[3].Patch.Sources = nil }, want: "sources"},
		{name: "patch recipe not object", mutate: func(s *Sidecar) { s.Images[0].Blobs[3].Patch.Recipe = json.RawMessage(`"x"`) }, want: "recipe"},
		{name: "patch on config", mutate: func(s *Sidecar) {
			s.Images[0].Blobs[1].Action, s.Images[0].Blobs[1].Patch = Patch, s.Images[0].Blobs[3].Patch
		}, want: "only layers"},
		{name: "manifest mismatch", mutate: func(s *Sidecar) { s.Images[0].Target.Manifest.Size = 1 }, want: "does not match the target manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			if tt.mutate != nil {
				tt.mutate(s)
			}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if tt.raw != nil {
				b = tt.raw(b)
			}
			_, err = ParseBytes(b)
			if err == nil {
				t.Fatalf("parsed; want error containing %q", tt.want)
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if k := fault.KindOf(err, 0); k != fault.Integrity {
				t.Fatalf("kind %v, want integrity", k)
			}
		})
	}
}

func TestNewerMinorToleratesUnknownFields(t *testing.T) {
	b, _ := json.Marshal(valid())
	b = bytes.Replace(b, []byte(curVersion), []byte(`"1.`+strconv.Itoa(Minor+1)+`"`), 1)
	b = bytes.Replace(b, []byte(`"kind"`), []byte(`"future":{"x":1},"kind"`), 1)
	if _, err := ParseBytes(b); err != nil {
		t.Fatalf("a newer minor version with unknown fields should parse: %v", err)
	}
}

func TestParseSizeLimit(t *testing.T) {
	big := bytes.Repeat([]byte(" "), MaxSize+10)
	_, err := Parse(bytes.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	s := valid()
	s.Images[0].Blobs[2].Action = "x"
	if _, err := s.Marshal(); err == nil {
		t.Fatal("Marshal accepted an invalid sidecar")
	}
}

func FuzzParse(f *testing.F) {
	b, _ := valid().Marshal()
	f.Add(b)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*.json"))
	for _, p := range seeds {
		if s, err := os.ReadFile(p); err == nil {
			f.Add(s)
		}
	}
	f.Add([]byte(`{"kind":"diffah-delta","version":"1.0","images":[[[[[[[[[[]]]]]]]]]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseBytes(data)
		if err != nil {
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("error without integrity kind: %v", err)
			}
			return
		}
		// Whatever parses has sizes no sum can overflow.
		for _, e := range s.Entries {
			if e.Size < 0 || e.Size > layout.MaxBlobSize {
				t.Fatalf("entry size %d accepted", e.Size)
			}
		}
		for _, im := range s.Images {
			for _, b := range im.Blobs {
				if b.Size < 0 || b.Size > layout.MaxBlobSize || b.Patch != nil && (b.Patch.UncompressedSize < 0 || b.Patch.UncompressedSize > layout.MaxBlobSize) {
					t.Fatalf("blob size %d accepted", b.Size)
				}
			}
		}
		// Whatever parses must survive a round trip unchanged.
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("parsed sidecar does not marshal: %v", err)
		}
		if _, err := ParseBytes(out); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
	})
}

// TestCrossImageRefs: a blob may come from another image's baseline of
// the same archive (From on a reused blob, Image on a patch source), and
// from nothing else.
func TestCrossImageRefs(t *testing.T) {
	bundle := func() *Sidecar {
		s := valid()
		other := s.Images[0]
		other.Name = "other"
		other.Blobs = append([]Blob(nil), s.Images[0].Blobs...)
		s.Images = append(s.Images, other)
		return s
	}
	parse := func(s *Sidecar) error {
		b, err := s.Marshal()
		if err != nil {
			return err
		}
		_, err = ParseBytes(b)
		return err
	}
	ok := bundle()
	ok.Images[1].Blobs[1].From = "app"
	src := *ok.Images[1].Blobs[3].Patch
	src.Sources = []Source{ok.Images[1].Blobs[3].Patch.Sources[0]}
	src.Sources[0].Image = "app"
	ok.Images[1].Blobs[3].Patch = &src
	if err := parse(ok); err != nil {
		t.Fatalf("reuse and patch source from the other image: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(s *Sidecar)
		want   string
	}{
		{"from itself", func(s *Sidecar) { s.Images[1].Blobs[1].From = "other" }, `refers to the baseline of image "other"`},
		{"from a stranger", func(s *Sidecar) { s.Images[1].Blobs[1].From = "nobody" }, `image "nobody", which is not another image`},
		{"from on a shipped blob", func(s *Sidecar) { s.Images[1].Blobs[2].From = "app" }, "ship blob names a baseline"},
		{"source of a stranger", func(s *Sidecar) {
			p := *s.Images[1].Blobs[3].Patch
			p.Sources = []Source{p.Sources[0]}
			p.Sources[0].Image = "nobody"
			s.Images[1].Blobs[3].Patch = &p
		}, `image "nobody"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := bundle()
			tc.mutate(s)
			err := parse(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) || fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("got %v, want an integrity error containing %q", err, tc.want)
			}
		})
	}
}
