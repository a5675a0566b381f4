package inspect

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"

	"github.com/diffah/diffah/internal/units"
)

// WriteHTML writes a single self-contained page (no scripts, styles or
// images from elsewhere) with the same data as WriteText and an SVG chart
// of shipped against saved bytes per layer, for release notes.
func (d *Doc) WriteHTML(w io.Writer) error {
	d = d.shown()
	type barRow struct {
		Label            string
		Y                int
		ShipW, SaveW     float64
		Shipped, Saved   string
		Image, Kind, Tip string
	}
	var rows []barRow
	var maxSize int64 = 1
	for _, im := range d.Images {
		for _, b := range im.Blobs {
			if b.Role == "layer" {
				maxSize = max(maxSize, b.TargetSize)
			}
		}
	}
	const width = 520.0
	y := 0
	for _, im := range d.Images {
		for _, b := range im.Blobs {
			if b.Role != "layer" {
				continue
			}
			saved := b.TargetSize - b.ShippedSize
			rows = append(rows, barRow{
				Label: Short(b.Digest), Y: y, Image: im.Name, Kind: b.Kind,
				ShipW: width * float64(b.ShippedSize) / float64(maxSize), SaveW: width * float64(max(saved, 0)) / float64(maxSize),
				Shipped: units.Bytes(b.ShippedSize), Saved: units.Bytes(max(saved, 0)),
				Tip: fmt.Sprintf("%s %s: %s shipped of %s", im.Name, b.Digest, units.Bytes(b.ShippedSize), units.Bytes(b.TargetSize)),
			})
			y += 22
		}
	}
	// The scale: five ticks from 0 to the largest layer, labelled in bytes.
	type tick struct {
		X     float64
		Label string
	}
	var ticks []tick
	for i := 0; i <= 4; i++ {
		ticks = append(ticks, tick{X: 250 + width*float64(i)/4, Label: units.Bytes(maxSize * int64(i) / 4)})
	}
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return page.Execute(w, map[string]any{
		"D": d, "Rows": rows, "Height": y + 60, "AxisY": y + 4, "LegendY": y + 40, "Ticks": ticks, "JSON": string(data),
	})
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"bytes": units.Bytes,
	"short": Short,
	// index0 is list[i], or "" past its end.
	"index0": func(list []string, i int) string {
		if i < len(list) {
			return list[i]
		}
		return ""
	},
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
	"ratio": func(f float64) string { return fmt.Sprintf("%.3f", f) },
	"add":   func(a, b float64) float64 { return a + b },
	"float": func(i int) float64 { return float64(i) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>diffah delta report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:13px}
.ship{fill:#d9534f}.save{fill:#5cb85c}.warn{color:#a94442}
</style></head><body>
<h1>diffah delta report</h1>
<p>{{.D.Source}}, format {{.D.Version}}{{if .D.Tool}}, written by {{.D.Tool}}{{end}}.
{{if eq .D.Source "archive"}}Signature: {{if .D.Signed}}{{if .D.SignatureVerified}}valid{{else}}present, not verified{{end}}, key <code>{{.D.KeyID}}</code>{{else}}none{{end}}.{{end}}</p>
<p><strong>{{bytes .D.Totals.ShippedBytes}}</strong> of {{bytes .D.Totals.FullBytes}} travels: <strong>{{pct .D.Totals.SavedPercent}} saved</strong>
({{.D.Totals.Shipped}} shipped, {{.D.Totals.Patched}} patched, {{.D.Totals.Reused}} reused blobs).</p>
<h2>Shipped and saved bytes per layer</h2>
{{if .D.ArchiveBytes}}<p>The archive itself: <strong>{{bytes .D.ArchiveBytes}}</strong> ({{if .D.ArchiveExact}}exact{{else}}estimated{{end}}; sidecar and tar overhead included).</p>{{end}}
{{if not .D.PatchSizesKnown}}<p class="warn">Patched layers are counted at full size, an upper bound: their patches were not computed.</p>{{end}}
<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="{{.Height}}" role="img" aria-label="shipped versus saved bytes per layer">
{{range .Rows}}<g><title>{{.Tip}}</title>
<text x="0" y="{{.Y}}" dy="14" font-size="12">{{.Image}} {{.Label}}</text>
<rect class="ship" x="250" y="{{.Y}}" width="{{printf "%.1f" .ShipW}}" height="16"/>
<rect class="save" x="{{printf "%.1f" (add 250 .ShipW)}}" y="{{.Y}}" width="{{printf "%.1f" .SaveW}}" height="16"/>
<text class="label" x="{{printf "%.1f" (add 256 (add .ShipW .SaveW))}}" y="{{.Y}}" dy="13" font-size="11">{{.Shipped}} shipped, {{.Saved}} saved</text>
</g>
{{end}}<g class="axis" font-size="11"><line x1="250" y1="{{.AxisY}}" x2="770" y2="{{.AxisY}}" stroke="#888"/>
{{range .Ticks}}<line x1="{{printf "%.1f" .X}}" y1="{{$.AxisY}}" x2="{{printf "%.1f" .X}}" y2="{{add (float $.AxisY) 5}}" stroke="#888"/><text x="{{printf "%.1f" .X}}" y="{{$.AxisY}}" dy="17" text-anchor="middle">{{.Label}}</text>
{{end}}</g>
<g font-size="12"><rect class="ship" x="250" y="{{.LegendY}}" width="10" height="10"/><text x="265" y="{{.LegendY}}" dy="9">shipped</text>
<rect class="save" x="340" y="{{.LegendY}}" width="10" height="10"/><text x="355" y="{{.LegendY}}" dy="9">saved</text></g>
</svg>
{{range .D.Images}}<h2>Image {{.Name}}{{if .Platform}} ({{.Platform}}){{end}}</h2>
<p>target <code>{{.TargetRef}}</code> <code>{{.TargetManifest}}</code>{{if .BaselineRef}}<br>baseline <code>{{.BaselineRef}}</code> <code>{{.BaselineManifest}}</code>{{end}}</p>
<table><tr><th>role</th><th>digest</th><th>kind</th><th>size</th><th>shipped</th><th>ratio</th><th>patch source</th><th>created by</th></tr>
{{range .Blobs}}{{$b := .}}<tr class="layer"><td>{{.Role}}</td><td><code title="{{.Digest}}">{{short .Digest}}</code></td><td>{{.Kind}}</td><td class="n">{{bytes .TargetSize}}</td><td class="n">{{if .Shared}}(shared){{else}}{{bytes .ShippedSize}}{{end}}</td><td class="n">{{ratio .Ratio}}</td><td>{{if .From}}from {{.From}}{{end}}{{range $i, $s := .Sources}}<code>{{short $s}}</code>{{with index0 $b.SourceImages $i}} (of {{.}}){{end}}{{with index0 $b.SourceTargets $i}} (new layer of {{.}}){{end}} {{end}}</td><td><code>{{.CreatedBy}}</code></td></tr>
{{end}}</table>
<p>{{pct .SavedPercent}} saved: {{bytes .ShippedBytes}} of {{bytes .FullBytes}}.</p>
{{template "files" .}}
{{end}}
{{if .D.TopSavings}}<h2>Top savings</h2><table>{{range .D.TopSavings}}<tr><td>{{.Image}}</td><td><code>{{short .Digest}}</code></td><td>{{.Kind}}</td><td class="n">{{bytes .Saved}}</td></tr>{{end}}</table>{{end}}
{{if .D.Histogram}}<h2>Layer sizes</h2><table><tr><th>size</th><th>layers</th><th>bytes</th><th>shipped</th></tr>{{range .D.Histogram}}<tr><td>{{.Label}}</td><td class="n">{{.Layers}}</td><td class="n">{{bytes .Bytes}}</td><td class="n">{{bytes .Shipped}}</td></tr>{{end}}</table>{{end}}
{{if .D.Warnings}}<h2>Warnings</h2><ul>{{range .D.Warnings}}<li class="warn">{{.}}</li>{{end}}</ul>{{end}}
<details><summary>JSON</summary><pre>{{.JSON}}</pre></details>
</body></html>
`))
