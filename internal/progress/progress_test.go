package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	b := New(nil, "pack", 4<<20)
	b.Add(1 << 20)
	got := b.Line(b.start.Add(time.Second))
	for _, want := range []string{"pack", "1.0 MiB / 4.0 MiB (25%)", "1.0 MiB/s", "ETA 3s"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	u := New(nil, "unpack", 0)
	u.Add(10)
	if l := u.Line(u.start.Add(time.Second)); strings.Contains(l, "ETA") || !strings.Contains(l, "10 B") {
		t.Errorf("unknown total: %q", l)
	}
}

func TestDrawsThrottledAndClears(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "x", 100)
	now := b.start
	b.now = func() time.Time { return now }
	r := b.Reader(strings.NewReader(strings.Repeat("a", 100)))
	buf := make([]byte, 10)
	for i := 0; i < 10; i++ {
		now = now.Add(50 * time.Millisecond)
		r.Read(buf)
	}
	draws := strings.Count(out.String(), "\r\033[K")
	if draws < 2 || draws > 3 {
		t.Fatalf("%d draws for 500ms at one per 200ms", draws)
	}
	b.Done()
	if !strings.HasSuffix(out.String(), "\r\033[K") {
		t.Fatal("Done did not clear the line")
	}
	if Enabled(&out, false) {
		t.Fatal("a buffer is not a terminal")
	}
	var nilBar *Bar
	nilBar.Add(1)
	nilBar.Done()
	io.Copy(io.Discard, New(nil, "", 0).Reader(strings.NewReader("x")))
}
