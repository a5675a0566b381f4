package sidecar

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
)

// realImage returns a sidecar image and the manifest and config bytes it
// describes.
func realImage(t testing.TB) (*Image, []byte, []byte) {
	cfg := []byte(`{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":["` + d("u1").String() + `","` + d("u2").String() + `"]}}`)
	s := valid()
	im := &s.Images[0]
	im.Target.Platform = "linux/arm64/v8"
	im.Blobs[1].Digest, im.Blobs[1].Size = digest.FromBytes(cfg), int64(len(cfg))
	desc := func(b Blob) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, b.MediaType, b.Digest, b.Size)
	}
	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + desc(im.Blobs[1]) +
		`,"layers":[` + desc(im.Blobs[2]) + `,` + desc(im.Blobs[3]) + `],"annotations":{"a":"b"}}`)
	md := Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digest.FromBytes(man), Size: int64(len(man))}
	im.Target.Manifest, im.Blobs[0].Descriptor = md, md
	return im, man, cfg
}

// TestCheckAgainstVerifiedBytes: every copy in the sidecar of what the
// manifest or config says must agree with it.
func TestCheckAgainstVerifiedBytes(t *testing.T) {
	im, man, cfg := realImage(t)
	if err := im.CheckManifest(man); err != nil {
		t.Fatal(err)
	}
	if err := im.CheckConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		lie  func(im *Image)
		want string
	}{
		{"manifest media type", func(im *Image) {
			im.Target.Manifest.MediaType = "application/vnd.docker.distribution.manifest.v2+json"
		}, `the manifest's own is "application/vnd.oci.image.manifest.v1\+json"`},
		{"config media type", func(im *Image) { im.Blobs[1].MediaType = "application/octet-stream" }, "blob 0"},
		{"config size", func(im *Image) { im.Blobs[1].Size++ }, "blob 0"},
		{"layer digest", func(im *Image) { im.Blobs[2].Digest = d("other") }, "blob 1"},
		{"layer media type", func(im *Image) { im.Blobs[3].MediaType = "application/vnd.oci.image.layer.v1.tar+zstd" }, "blob 2"},
		{"extra layer", func(im *Image) { im.Blobs = append(im.Blobs, im.Blobs[2]) }, "4 blobs, the manifest lists 3"},
		{"diffID", func(im *Image) { im.Blobs[2].DiffID = d("x") }, "layer 0 has diffID"},
		{"platform os", func(im *Image) { im.Target.Platform = "windows/arm64" }, `platform "windows/arm64"`},
		{"platform variant", func(im *Image) { im.Target.Platform = "linux/arm64/v7" }, `the config says "linux/arm64/v8"`},
		{"manifest digest", func(im *Image) { im.Target.Manifest.Digest = d("m2") }, "the manifest bytes are"},
	} {
		t.Run(c.name, func(t *testing.T) {
			im, man, cfg := realImage(t)
			c.lie(im)
			err := im.CheckManifest(man)
			if err == nil {
				err = im.CheckConfig(cfg)
			}
			if err == nil || fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), strings.ReplaceAll(c.want, `\+`, "+")) {
				t.Fatalf("err = %v, want an integrity error with %q", err, c.want)
			}
		})
	}
	// A platform without a variant agrees with a config that has one.
	im, _, cfg = realImage(t)
	im.Target.Platform = "linux/arm64"
	if err := im.CheckConfig(cfg); err != nil {
		t.Fatal(err)
	}
}

// TestManifestMediaType: the media type a manifest's bytes declare.
func TestManifestMediaType(t *testing.T) {
	for raw, want := range map[string]string{
		`{"schemaVersion":2,"config":{},"layers":[]}`:                                            "application/vnd.oci.image.manifest.v1+json",
		`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`: "application/vnd.docker.distribution.manifest.v2+json",
		`{"schemaVersion":2,"manifests":[]}`:                                                     "",
		`{"schemaVersion":1,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`:           "",
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}`:              "",
		`[]`: "",
	} {
		got, err := ManifestMediaType([]byte(raw))
		if got != want || (want == "") != (err != nil) {
			t.Errorf("%s: %q, %v; want %q", raw, got, err, want)
		}
	}
}

// FuzzCheckManifest: arbitrary manifest and config bytes against a real
// sidecar image: an error or agreement, never a panic; agreement only
// for bytes that describe what the sidecar says.
func FuzzCheckManifest(f *testing.F) {
	_, man, cfg := realImage(f)
	f.Add(man, cfg)
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:../x"}}`), []byte(`{"rootfs":{"diff_ids":["nocolon"]}}`))
	f.Add([]byte(`{"schemaVersion":2,"layers":[{"digest":"nocolon","size":-1}]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, man, cfg []byte) {
		im, _, _ := realImage(t)
		md := Descriptor{MediaType: im.Target.Manifest.MediaType, Digest: digest.FromBytes(man), Size: int64(len(man))}
		im.Target.Manifest, im.Blobs[0].Descriptor = md, md
		if err := im.CheckManifest(man); err == nil {
			var m struct {
				Layers []json.RawMessage `json:"layers"`
			}
			if json.Unmarshal(man, &m) != nil || len(m.Layers) != len(im.Blobs)-2 {
				t.Fatalf("accepted a manifest that does not list the sidecar's layers: %s", man)
			}
		}
		im.CheckConfig(cfg)
	})
}
