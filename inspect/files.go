package inspect

import (
	"fmt"
	"html/template"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/internal/units"
	"github.com/diffah/diffah/sidecar"
)

// TopFiles is how many files per layer inspect shows unless
// Doc.AllFiles is set (inspect --files).
const TopFiles = 10

// LayerFiles says what the files of a layer that travels cost in the
// delta: the answer to "why is my delta 40 MB?". Files, copied and
// unlisted files, OtherBytes and FormBytes add up to the layer's shipped
// bytes.
type LayerFiles struct {
	// Encoded is false when the layer travels in a form without files
	// (shipped whole, a patch of its compressed bytes or of its whole
	// deflate token form) or when its file costs are not known; Note
	// then says which.
	Encoded bool   `json:"encoded"`
	Note    string `json:"note,omitempty"`
	// The costs: files costliest first (all of those the archive records
	// with --files, else the first TopFiles; the others are counted in
	// unlisted and unlistedBytes).
	*sidecar.FileCosts
	// Estimated is set when any listed file's bytes are a proportional
	// share rather than measured (shown as "≈").
	Estimated bool `json:"estimated"`
}

// layerFiles describes the files of one row of the layer table from what
// its archive records (archived false: a plan, patches not computed).
func layerFiles(row Blob, archived bool, costs *sidecar.FileCosts) *LayerFiles {
	if row.Role != sidecar.RoleLayer || row.Kind == KindReused || row.Shared {
		return nil
	}
	switch {
	case row.Kind == KindFull:
		return &LayerFiles{Note: "ships whole: not file-encoded"}
	case row.Codec == sidecar.BlobPatchCodec:
		return &LayerFiles{Note: "a patch of its compressed bytes (" + row.Codec + "): not file-encoded"}
	case row.Codec == sidecar.DeflateInlineCodec:
		return &LayerFiles{Note: "a patch of its deflate token form, content inline (" + row.Codec + "): not file-encoded"}
	case !archived:
		return &LayerFiles{Note: "patch not computed (a plan whose images are not at hand: inspect computes a plan's patches when it can open its target and baselines)"}
	case costs == nil:
		return &LayerFiles{Note: "no per-file costs recorded (an archive written before sidecar format 1.4)"}
	}
	fc := *costs
	lf := &LayerFiles{Encoded: true, FileCosts: &fc}
	lf.setEstimated()
	return lf
}

func (lf *LayerFiles) setEstimated() {
	lf.Estimated = false
	for _, f := range lf.Files {
		lf.Estimated = lf.Estimated || f.Estimated
	}
}

// top keeps the first n files, counting the others as unlisted.
func (lf *LayerFiles) top(n int) *LayerFiles {
	if lf == nil || lf.FileCosts == nil || len(lf.Files) <= n {
		return lf
	}
	fc := *lf.FileCosts
	for _, f := range fc.Files[n:] {
		fc.Unlisted++
		fc.UnlistedBytes += f.Bytes
	}
	fc.Files = fc.Files[:n]
	out := &LayerFiles{Encoded: true, Note: lf.Note, FileCosts: &fc}
	out.setEstimated()
	return out
}

// shown is the document as the writers show it: every recorded file with
// AllFiles, else the first TopFiles of each layer.
func (d *Doc) shown() *Doc {
	if d.AllFiles {
		return d
	}
	c := *d
	c.Images = make([]Image, len(d.Images))
	for i, im := range d.Images {
		im.Blobs = append([]Blob(nil), im.Blobs...)
		for j := range im.Blobs {
			im.Blobs[j].Files = im.Blobs[j].Files.top(TopFiles)
		}
		c.Images[i] = im
	}
	return &c
}

// approx writes n bytes, "≈" in front when estimated.
func approx(n int64, estimated bool) string {
	if estimated {
		return "≈" + units.Bytes(n)
	}
	return units.Bytes(n)
}

// writeFiles writes, for an image, what each layer's files cost.
func (d *Doc) writeFiles(b *strings.Builder, im Image) {
	has := false
	for _, r := range im.Blobs {
		has = has || r.Files != nil
	}
	if !has {
		return
	}
	if d.AllFiles {
		b.WriteString("  files, per layer that travels (what each costs in the delta):\n")
	} else {
		fmt.Fprintf(b, "  files that cost the most, per layer that travels (top %d; --files lists all):\n", TopFiles)
	}
	for _, r := range im.Blobs {
		lf := r.Files
		if lf == nil {
			continue
		}
		fmt.Fprintf(b, "    layer %s (%s, %s", Short(r.Digest), r.Kind, units.Bytes(r.ShippedSize))
		if r.Codec != "" {
			fmt.Fprintf(b, ", %s", r.Codec)
		}
		b.WriteString(")")
		if !lf.Encoded {
			fmt.Fprintf(b, ": %s\n", lf.Note)
			continue
		}
		fmt.Fprintf(b, ": %s\n", filesSummary(lf))
		if len(lf.Files) > 0 {
			tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "      PATH\tOLD SIZE\tNEW SIZE\tENCODING\tSHIPPED")
			for _, f := range lf.Files {
				old := "-"
				if f.OldSize > 0 {
					old = units.Bytes(f.OldSize)
				}
				path := f.Path
				if f.OldPath != "" {
					path += " (from " + f.OldPath + ")"
				}
				fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\t%s\n", path, old, units.Bytes(f.Size), f.Encoding, approx(f.Bytes, f.Estimated))
			}
			tw.Flush()
		}
		if lf.Unlisted > 0 {
			fmt.Fprintf(b, "      (%d more files: %s)\n", lf.Unlisted, approx(lf.UnlistedBytes, true))
		}
	}
	if d.filesEstimated() {
		b.WriteString("  ≈: a proportional share of bytes compressed together (literals and small edits share one zstd stream), not a measured size\n")
	}
}

// filesSummary is the line above a layer's file table.
func filesSummary(lf *LayerFiles) string {
	var parts []string
	n := len(lf.Files) + lf.Unlisted
	parts = append(parts, strings.Replace(plural(n, "file"), " ", " changed or new ", 1))
	if lf.Copied > 0 {
		parts = append(parts, fmt.Sprintf("%d unchanged, copied from the baseline (%s)", lf.Copied, approx(lf.CopiedBytes, true)))
	}
	parts = append(parts, fmt.Sprintf("%s tar headers, other entries and framing", approx(lf.OtherBytes, true)))
	if lf.FormBytes > 0 {
		parts = append(parts, fmt.Sprintf("%s the deflate token form", units.Bytes(lf.FormBytes)))
	}
	s := strings.Join(parts, "; ")
	if lf.Whole {
		s += " (the layer travels as one zstd frame: every share is an estimate)"
	}
	return s
}

func (d *Doc) filesEstimated() bool {
	for _, im := range d.Images {
		for _, r := range im.Blobs {
			if r.Files != nil && r.Files.Encoded {
				return true // the summary lines' shares are always estimates
			}
		}
	}
	return false
}

// The HTML part: per image, a table of files per layer that travels.
var _ = template.Must(page.Funcs(template.FuncMap{"approx": approx, "filesSummary": filesSummary}).New("files").Parse(`
{{- $any := false}}{{range .Blobs}}{{if .Files}}{{$any = true}}{{end}}{{end}}
{{- if $any}}<h3>Files that cost the most, per layer</h3>
{{- range .Blobs}}{{$r := .}}{{with .Files}}
<p class="files">layer <code title="{{$r.Digest}}">{{short $r.Digest}}</code> ({{$r.Kind}}, {{bytes $r.ShippedSize}}{{if $r.Codec}}, {{$r.Codec}}{{end}}):
{{if .Encoded}}{{filesSummary .}}{{else}}{{.Note}}{{end}}</p>
{{- if and .Encoded .Files}}
<table class="files"><tr><th>path</th><th>old size</th><th>new size</th><th>encoding</th><th>shipped</th></tr>
{{range .Files}}<tr><td><code>{{.Path}}</code>{{if .OldPath}} (from <code>{{.OldPath}}</code>){{end}}</td><td class="n">{{if .OldSize}}{{bytes .OldSize}}{{else}}-{{end}}</td><td class="n">{{bytes .Size}}</td><td>{{.Encoding}}</td><td class="n">{{approx .Bytes .Estimated}}</td></tr>
{{end}}{{if .Unlisted}}<tr><td colspan="4">{{.Unlisted}} more files</td><td class="n">{{approx .UnlistedBytes true}}</td></tr>{{end}}</table>
{{- end}}{{end}}{{end}}
<p class="note">≈: a proportional share of bytes compressed together, not a measured size.</p>
{{- end}}`))

// SetFileCosts replaces what the rows of layer record of its files' costs
// with fc: every file, where the sidecar lists only the costliest (a dry
// run knows them all).
func (d *Doc) SetFileCosts(layer digest.Digest, fc *sidecar.FileCosts) {
	for i := range d.Images {
		for j := range d.Images[i].Blobs {
			r := &d.Images[i].Blobs[j]
			if r.Digest == layer && r.Files != nil && r.Files.Encoded {
				r.Files = &LayerFiles{Encoded: true, FileCosts: fc}
				r.Files.setEstimated()
			}
		}
	}
}
