package inspect

import (
	"bytes"
	"strings"
	"testing"
)

// Each layer row says what made it: the config history entries that made
// a layer, in order, shortened; the text and HTML show the column.
func TestAddHistory(t *testing.T) {
	d := FromSidecar(bundle(), false, "", false)
	name := d.Images[0].Name
	var layers int
	for _, b := range d.Images[0].Blobs {
		if b.Role == "layer" {
			layers++
		}
	}
	cfg := `{"history":[{"created_by":"/bin/sh -c #(nop) ADD file:abc in / "},{"created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true},` +
		`{"created_by":"/bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates curl gnupg && rm -rf /var/lib/apt/lists/*"},{"created_by":"COPY app /app"}]}`
	d.AddHistory(name, []byte(cfg))
	var got []string
	for _, b := range d.Images[0].Blobs {
		if b.Role == "layer" {
			got = append(got, b.CreatedBy)
		}
	}
	want := []string{"ADD file:abc in /", "apt-get update && apt-get install -y --no-install-recommend…", "COPY app /app"}
	for i := range want {
		if i < layers && got[i] != want[i] {
			t.Errorf("layer %d: created by %q, want %q", i, got[i], want[i])
		}
	}
	var text, page bytes.Buffer
	d.WriteText(&text)
	d.WriteHTML(&page)
	if !strings.Contains(text.String(), "CREATED BY") || !strings.Contains(text.String(), "ADD file:abc in /") {
		t.Errorf("text lacks the created-by column:\n%s", text.String())
	}
	if !strings.Contains(page.String(), "<code>ADD file:abc in /</code>") {
		t.Error("HTML lacks the created-by column")
	}
	if len([]rune(ShortCommand(strings.Repeat("x", 200)))) != 60 {
		t.Error("not shortened to 60 characters")
	}
}
