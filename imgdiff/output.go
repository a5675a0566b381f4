package imgdiff

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// JSONSchema names the version of the document WriteJSON emits. Fields may be
// added within a version; removing or changing one bumps it.
const JSONSchema = "diffah.imgdiff/v1"

// jsonChange is a Change on the wire. layer is omitted for changes that do
// not belong to one layer.
type jsonChange struct {
	Type   string `json:"type"`
	Layer  *int   `json:"layer,omitempty"`
	Name   string `json:"name"`
	Input0 string `json:"input0"`
	Input1 string `json:"input1"`
	Detail string `json:"detail"`
}

// jsonResult is the document WriteJSON emits:
//
//	{
//	  "schema":   "diffah.imgdiff/v1",
//	  "equal":    false,
//	  "semantic": false,
//	  "summary":  {"total": 3, "byType": {"File": 2, "Config": 1}, "added": 1, "removed": 0, "changed": 2},
//	  "changes":  [{"type": "File", "layer": 0, "name": "/etc/hosts",
//	                "input0": "sha256:<64 hex> 0644 0:0 10B", "input1": "...", "detail": "content"}]
//	}
//
// "changes" is always an array (empty when equal); digests are in full.
type jsonResult struct {
	Schema   string       `json:"schema"`
	Equal    bool         `json:"equal"`
	Semantic bool         `json:"semantic"`
	Summary  Summary      `json:"summary"`
	Changes  []jsonChange `json:"changes"`
}

// WriteJSON writes r as the JSON document described by jsonResult, one
// document followed by a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	doc := jsonResult{Schema: JSONSchema, Equal: r.Equal, Semantic: r.Semantic, Summary: r.Summary, Changes: []jsonChange{}}
	if doc.Summary.ByType == nil {
		doc.Summary.ByType = map[string]int{}
	}
	for _, c := range sorted(r.Changes) {
		jc := jsonChange{Type: c.Type, Name: c.Name, Input0: c.Input0, Input1: c.Input1, Detail: c.Detail}
		if c.Layer != NoLayer {
			l := c.Layer
			jc.Layer = &l
		}
		doc.Changes = append(doc.Changes, jc)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("imgdiff: writing JSON: %w", err)
	}
	return nil
}

func sorted(cs []Change) []Change {
	out := append([]Change(nil), cs...)
	sortChanges(out)
	return out
}

var digestRE = regexp.MustCompile(`sha256:([0-9a-f]{12})[0-9a-f]{52}`)

// abbrev shortens full sha256 digests for people; JSON keeps them whole.
func abbrev(s string) string { return digestRE.ReplaceAllString(s, "sha256:$1…") }

// cell makes a value safe for one table cell: tabs and newlines (a config
// value can hold anything) would break the alignment.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsAny(s, "\t\n\r") {
		q := strconv.Quote(s)
		return q[1 : len(q)-1]
	}
	return s
}

// WriteText writes r as an aligned table with columns TYPE, LAYER ("-" when
// the change is not per layer), NAME, INPUT-0, INPUT-1 and DETAIL, sorted as
// Compare sorts, digests abbreviated. Equal images give the header only.
func (r *Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tLAYER\tNAME\tINPUT-0\tINPUT-1\tDETAIL")
	for _, c := range sorted(r.Changes) {
		layer := "-"
		if c.Layer != NoLayer {
			layer = strconv.Itoa(c.Layer)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(c.Type), layer, cell(c.Name),
			cell(abbrev(c.Input0)), cell(abbrev(c.Input1)), cell(c.Detail))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("imgdiff: writing table: %w", err)
	}
	return nil
}
