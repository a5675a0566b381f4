package inspect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/diffah/diffah/sidecar"
)

// withFileCosts is bundle() with 14 files recorded on its patched layer
// (whose patch entry is 2 MiB).
func withFileCosts() *sidecar.Sidecar {
	s := bundle()
	fc := &sidecar.FileCosts{Copied: 900, CopiedBytes: 4000, OtherBytes: 20000}
	left := int64(2<<20) - fc.CopiedBytes - fc.OtherBytes
	for i := range 14 {
		n := left / 2
		if i == 13 {
			n = left
		}
		f := sidecar.FileCost{Path: fmt.Sprintf("usr/lib/lib%02d.so", i), OldSize: 1 << 20, Size: 1<<20 + int64(i), Encoding: "adiff", Bytes: n}
		if i == 2 {
			f.OldPath, f.Encoding, f.Estimated = "usr/lib/lib02-old.so", "lit+delta", true
		}
		if i == 3 {
			f.OldSize, f.Encoding, f.Estimated = 0, "lit", true
		}
		fc.Files = append(fc.Files, f)
		left -= n
	}
	// costliest first: the last one got what was left, move it in place
	last := fc.Files[13]
	for i := range fc.Files[:13] {
		if fc.Files[i].Bytes < last.Bytes {
			copy(fc.Files[i+1:], fc.Files[i:13])
			fc.Files[i] = last
			break
		}
	}
	s.Images[0].Blobs[4].FileCosts = fc
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return s
}

func layerRow(t *testing.T, d *Doc) Blob {
	t.Helper()
	var doc struct {
		Images []struct{ Blobs []Blob }
	}
	var b bytes.Buffer
	if err := d.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Images[0].Blobs[4]
}

// By default each layer shows its 10 costliest files, the rest summed;
// with AllFiles, every file. Either way the parts add up to what the
// layer ships.
func TestFilesTopTenAndAll(t *testing.T) {
	d := FromSidecar(withFileCosts(), false, "", false)
	top := layerRow(t, d).Files
	if top == nil || !top.Encoded || len(top.Files) != TopFiles || top.Unlisted != 4 || !top.Estimated {
		t.Fatalf("top files: %+v", top)
	}
	if got := top.Total(); got != 2<<20 {
		t.Fatalf("top files add up to %d, the layer ships %d", got, 2<<20)
	}
	d.AllFiles = true
	all := layerRow(t, d).Files
	if len(all.Files) != 14 || all.Unlisted != 0 || all.Total() != 2<<20 {
		t.Fatalf("all files: %d listed, %d unlisted, total %d", len(all.Files), all.Unlisted, all.Total())
	}
	// The document itself is not trimmed by showing it.
	if n := len(FromSidecar(withFileCosts(), false, "", false).Images[0].Blobs[4].Files.Files); n != 14 {
		t.Fatalf("the doc keeps %d files", n)
	}
	// A layer shipped whole says it is not file-encoded; a reused one
	// has no files entry.
	if f := d.Images[0].Blobs[2].Files; f == nil || f.Encoded || !strings.Contains(f.Note, "not file-encoded") {
		t.Fatalf("shipped layer: %+v", f)
	}
	if f := d.Images[0].Blobs[3].Files; f != nil {
		t.Fatalf("reused layer: %+v", f)
	}
}

func TestFilesText(t *testing.T) {
	d := FromSidecar(withFileCosts(), false, "", false)
	var b bytes.Buffer
	if err := d.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"files that cost the most, per layer that travels (top 10; --files lists all):",
		"layer sha256:a172cedcae47 (patch, 2.0 MiB, diffah-tar/1): 14 changed or new files; 900 unchanged, copied from the baseline (≈3.9 KiB); ≈19.5 KiB tar headers, other entries and framing",
		"      PATH                                          OLD SIZE  NEW SIZE  ENCODING   SHIPPED\n",
		"      usr/lib/lib00.so                              1.0 MiB   1.0 MiB   adiff      1012.3 KiB\n",
		"      usr/lib/lib02.so (from usr/lib/lib02-old.so)  1.0 MiB   1.0 MiB   lit+delta  ≈253.1 KiB\n",
		"      usr/lib/lib03.so                              -         1.0 MiB   lit        ≈126.5 KiB\n",
		"(4 more files: ≈",
		"layer sha256:cae662172fd4 (full, 3.0 MiB): ships whole: not file-encoded",
		"≈: a proportional share",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	d.AllFiles = true
	b.Reset()
	d.WriteText(&b)
	if !strings.Contains(b.String(), "usr/lib/lib13.so") || strings.Contains(b.String(), "more files") {
		t.Errorf("--files text:\n%s", b.String())
	}
}

// The HTML page shows the same top files, and loads nothing from
// elsewhere.
func TestFilesHTML(t *testing.T) {
	d := FromSidecar(withFileCosts(), false, "", false)
	var b bytes.Buffer
	if err := d.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{"<h3>Files that cost the most, per layer</h3>", "<code>usr/lib/lib00.so</code>", "(from <code>usr/lib/lib02-old.so</code>)",
		"<td>lit&#43;delta</td><td class=\"n\">≈253.1 KiB</td>", "4 more files", "ships whole: not file-encoded"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "usr/lib/lib13.so") && !strings.Contains(page, `"path": "usr/lib/lib13.so"`) {
		t.Error("the page's table lists more than the top files")
	}
	for _, bad := range []string{"https://", "<script", "src=", "<link"} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("the page is not self-contained: %q", bad)
		}
	}
}

// A plan's patches are not computed: the layer says how to get its files.
func TestFilesOfAPlan(t *testing.T) {
	d := FromSidecar(withFileCosts(), false, "", false)
	d.SetFileCosts(dg("app"), &sidecar.FileCosts{Files: []sidecar.FileCost{{Path: "only", Size: 1, Encoding: "lit", Bytes: 2 << 20, Estimated: true}}})
	if f := d.Images[0].Blobs[4].Files; len(f.Files) != 1 || f.Files[0].Path != "only" || !f.Estimated {
		t.Fatalf("SetFileCosts: %+v", f)
	}
}
