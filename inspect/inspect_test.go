package inspect

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/net/html"

	"github.com/diffah/diffah/sidecar"
)

var update = flag.Bool("update", false, "rewrite golden files")

func dg(s string) digest.Digest { return digest.FromString(s) }

// bundle is a two-image archive sidecar: a shared base layer shipped once,
// a patched layer, a reused layer and a large layer shipped whole.
func bundle() *sidecar.Sidecar {
	lt := "application/vnd.oci.image.layer.v1.tar+gzip"
	man := func(n string) sidecar.Descriptor {
		return sidecar.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: dg("m" + n), Size: 500}
	}
	cfg := func(n string) sidecar.Blob {
		return sidecar.Blob{Descriptor: sidecar.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: dg("c" + n), Size: 300},
			Role: sidecar.RoleConfig, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}, Entry: sidecar.BlobEntryName(dg("c" + n))}
	}
	base := sidecar.Blob{Descriptor: sidecar.Descriptor{MediaType: lt, Digest: dg("base"), Size: 3 << 20}, Role: sidecar.RoleLayer, DiffID: dg("ubase"),
		Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}, Entry: sidecar.BlobEntryName(dg("base"))}
	patch := sidecar.Blob{Descriptor: sidecar.Descriptor{MediaType: lt, Digest: dg("app"), Size: 40 << 20}, Role: sidecar.RoleLayer, DiffID: dg("uapp"),
		Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Patch, Patch: &sidecar.PatchRef{PatchSpec: sidecar.PatchSpec{Codec: "diffah-tar/1", Recipe: json.RawMessage(`{"format":"gzip","impl":"go","level":6}`),
			Sources: []sidecar.Source{{Descriptor: sidecar.Descriptor{MediaType: lt, Digest: dg("oldapp"), Size: 39 << 20}, DiffID: dg("uold")}}}, Entry: sidecar.PatchEntryName(dg("p")), UncompressedSize: 90 << 20}}}
	reused := sidecar.Blob{Descriptor: sidecar.Descriptor{MediaType: lt, Digest: dg("libs"), Size: 7 << 20}, Role: sidecar.RoleLayer, DiffID: dg("ulibs"), Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Reuse}}
	s := sidecar.New("diffah test")
	for _, n := range []string{"a", "b"} {
		im := sidecar.Image{Name: "svc-" + n, Target: sidecar.Target{Ref: "oci:./" + n + "-v2", Platform: "linux/amd64", Manifest: man(n)},
			Baseline: &sidecar.Baseline{Ref: "oci:./" + n + "-v1", ManifestDigest: dg("bm" + n)},
			Blobs:    []sidecar.Blob{{Descriptor: man(n), Role: sidecar.RoleManifest, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}, Entry: sidecar.BlobEntryName(man(n).Digest)}, cfg(n), base, reused}}
		if n == "a" {
			im.Blobs = append(im.Blobs, patch)
		}
		s.Images = append(s.Images, im)
		s.Entries = append(s.Entries, sidecar.Entry{Name: sidecar.BlobEntryName(man(n).Digest), Size: 500, Digest: man(n).Digest},
			sidecar.Entry{Name: sidecar.BlobEntryName(dg("c" + n)), Size: 300, Digest: dg("c" + n)})
		if n == "a" {
			s.Entries = append(s.Entries, sidecar.Entry{Name: sidecar.BlobEntryName(dg("base")), Size: 3 << 20, Digest: dg("base")},
				sidecar.Entry{Name: sidecar.PatchEntryName(dg("p")), Size: 2 << 20, Digest: dg("p")})
		}
	}
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return s
}

func TestFromSidecarTotals(t *testing.T) {
	d := FromSidecar(bundle(), true, "sha256:key", true)
	a := d.Images[0]
	if a.Shipped != 3 || a.Patched != 1 || a.Reused != 1 {
		t.Fatalf("counts %+v", a.Totals)
	}
	// base (3 MiB) travels once, in image a; b marks it shared.
	if d.Images[1].Blobs[2].ShippedSize != 0 || !d.Images[1].Blobs[2].Shared {
		t.Fatalf("shared base counted twice: %+v", d.Images[1].Blobs[2])
	}
	want := int64(2*500 + 2*300 + 3<<20 + 2<<20)
	if d.Totals.ShippedBytes != want {
		t.Fatalf("shipped %d, want %d", d.Totals.ShippedBytes, want)
	}
	if d.TopSavings[0].Digest != dg("app") || d.TopSavings[0].Saved != 38<<20 {
		t.Fatalf("top saving %+v", d.TopSavings[0])
	}
	if got := d.Images[0].Blobs[4].Ratio; got != 0.05 {
		t.Fatalf("patch ratio %v", got)
	}
	var hist int
	for _, h := range d.Histogram {
		hist += h.Layers
	}
	if hist != 5 {
		t.Fatalf("histogram counts %d layers, want 5", hist)
	}
	if !hasWarning(d, "ships whole") {
		t.Fatalf("no warning for the 3 MiB layer shipped whole: %v", d.Warnings)
	}
}

func hasWarning(d *Doc, s string) bool {
	for _, w := range d.Warnings {
		if strings.Contains(w, s) {
			return true
		}
	}
	return false
}

func TestGoldenText(t *testing.T) {
	var buf bytes.Buffer
	if err := FromSidecar(bundle(), true, "sha256:key", false).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "bundle.txt")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("text output differs from %s (go test -update to accept):\n%s", golden, buf.String())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := FromSidecar(bundle(), false, "", false).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Doc
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if back.Source != "archive" || len(back.Images) != 2 || back.Images[0].Name != "svc-a" {
		t.Fatalf("decoded %+v", back)
	}
}

func TestHTMLSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := FromSidecar(bundle(), true, "sha256:key", true).WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var layers, rects int
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "link", "img", "iframe", "object", "embed":
				t.Errorf("external or active element <%s>", n.Data)
			case "rect":
				rects++
			case "tr":
				for _, a := range n.Attr {
					if a.Key == "class" && a.Val == "layer" {
						layers++
					}
				}
			}
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href") && !strings.HasPrefix(a.Val, "#") {
					t.Errorf("<%s %s=%q> loads a resource", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if layers != 9 {
		t.Errorf("%d blob rows, want 9 (every blob of both images)", layers)
	}
	if rects < 2*5 {
		t.Errorf("%d chart bars, want two per layer", rects)
	}
	if strings.Contains(buf.String(), "http://") && !strings.Contains(buf.String(), `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("page references an external URL")
	}
}
