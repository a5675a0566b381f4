package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestReport: an error is rendered once with its hint and its kind is the
// exit code; an interruption is 130 without a hint; a panic is 70 with its
// stack only when debugging; Different prints nothing; the JSON form is
// one record.
func TestReport(t *testing.T) {
	hinted := WithHint(Errorf(Integrity, "blob x: bad"), Integrity, "fetch it again")
	for _, c := range []struct {
		name  string
		err   error
		debug bool
		code  int
		want  string
	}{
		{"kind and hint", hinted, false, 4, "diffah: blob x: bad\nhint: fetch it again\n"},
		{"untagged is env", fmt.Errorf("plain"), false, 3, "diffah: plain\n"},
		{"interrupted", fmt.Errorf("reading: %w", context.Canceled), false, 130, "diffah: interrupted; nothing was left half-written\n"},
		{"different", Errorf(Different, "images differ"), false, 1, ""},
		{"panic", Panic("boom", []byte("STACK\n")), false, 70, "diffah: "},
		{"panic debug", Panic("boom", []byte("STACK\n")), true, 70, "STACK\n"},
	} {
		var b bytes.Buffer
		if code := Report(&b, c.err, false, c.debug); code != c.code || !strings.Contains(b.String(), c.want) || c.want == "" && b.Len() != 0 {
			t.Errorf("%s: code %d, output %q; want %d, %q", c.name, code, b.String(), c.code, c.want)
		}
		if c.name == "panic" && strings.Contains(b.String(), "STACK") {
			t.Errorf("panic: stack shown without debug: %q", b.String())
		}
	}
	var b bytes.Buffer
	if code := Report(&b, hinted, true, false); code != 4 {
		t.Fatalf("json: code %d", code)
	}
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["error"] != "blob x: bad" || rec["hint"] != "fetch it again" || rec["exit"] != float64(4) {
		t.Fatalf("json: %q (%v)", b.String(), err)
	}
}
