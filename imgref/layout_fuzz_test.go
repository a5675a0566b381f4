package imgref

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
)

// FuzzReadLayout feeds arbitrary index.json bytes to the OCI layout reader
// over a real layout (one image, plus an index of it): it must not panic,
// every error must carry a kind, a digest that reaches the file system
// must have passed layout.CheckDigest, and what opens must read back
// verified.
func FuzzReadLayout(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "l")
	want := fixture(f, types.OCIManifestSchema1, "linux/amd64", "fz", "gzip")
	mustWrite(f, "oci:"+dir+":v", want.image(f), Options{})
	good, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	m := sha256Hash(want.raw)
	l := want.m.Layers[0]
	for _, s := range []string{
		`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + m.String() + `","size":` + strconv.Itoa(len(want.raw)) + `}]}`,
		`{"schemaVersion":2,"manifests":[{"digest":"sha256:../../x","size":1}]}`,
		`{"schemaVersion":2,"manifests":[{"digest":"` + m.String() + `","size":-1}]}`,
		`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + l.Digest.String() + `","size":` + strconv.Itoa(int(l.Size)) + `}]}`,
		`{"schemaVersion":2,"manifests":[]}`,
		`{"manifests":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, index []byte) {
		d := filepath.Join(t.TempDir(), "l")
		if err := os.CopyFS(d, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "index.json"), index, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := Open(context.Background(), Ref{Transport: OCI, Path: d}, Options{Platform: "linux/amd64"})
		if err != nil {
			if fault.KindOf(err, 0) == 0 {
				t.Fatalf("untagged error: %v", err)
			}
			return
		}
		defer img.Close()
		ls, err := img.Layers()
		if err != nil {
			return
		}
		for _, l := range ls {
			rc, err := l.Compressed()
			if err != nil {
				continue
			}
			if _, err := io.Copy(io.Discard, rc); err != nil && fault.KindOf(err, 0) == 0 {
				t.Fatalf("untagged read error: %v", err)
			}
			rc.Close()
		}
	})
}

// FuzzClaimedType checks the media-type claim against arbitrary bytes:
// no panic, and a document that states a type other than the claim is
// never accepted.
func FuzzClaimedType(f *testing.F) {
	for _, s := range [][2]string{
		{string(types.OCIImageIndex), `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}`},
		{string(types.OCIImageIndex), `{"schemaVersion":2,"config":{}}`},
		{string(types.OCIManifestSchema1), `{"schemaVersion":2,"manifests":[]}`},
		{"", `{"schemaVersion":2}`},
		{string(types.DockerManifestSchema2), `{"mediaType":null}`},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, claimed string, raw []byte) {
		mt, err := claimedType(types.MediaType(claimed), raw, "oci:x", "index.json", sha256Hash(raw))
		if err != nil {
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("want integrity error, got %v", err)
			}
			return
		}
		if stated := sniffMediaType(raw); claimed != "" && stated != "" && strings.Contains(string(raw), `"mediaType"`) && mt != types.MediaType(claimed) {
			t.Fatalf("claim %q accepted as %q", claimed, mt)
		}
	})
}
