package inspect

import (
	"bytes"
	"strings"
	"testing"
)

// The chart has a scale labelled in bytes and a byte label on each bar,
// and the page still loads nothing from elsewhere.
func TestHTMLScaleAndLabels(t *testing.T) {
	d := FromSidecar(bundle(), false, "", false)
	d.ArchiveBytes, d.ArchiveExact = 12345, true
	var b bytes.Buffer
	if err := d.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Count(page, `text-anchor="middle"`) != 5 || !strings.Contains(page, `>0 B</text>`) {
		t.Error("no byte scale of five ticks from 0 B")
	}
	rows := strings.Count(page, `class="ship" x="250" y=`) - 1 // one is the legend
	if got := strings.Count(page, `<text class="label"`); got != rows || rows == 0 {
		t.Errorf("%d bars, %d byte labels", rows, got)
	}
	if !strings.Contains(page, "The archive itself: <strong>12.1 KiB</strong> (exact;") {
		t.Error("the archive's real size is not shown")
	}
	for _, bad := range []string{"http://", "https://", "<script", "src="} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("the page is not self-contained: %q", bad)
		}
	}
}
