package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	b := New(nil, "pack", 8<<20)
	b.Add(2 << 20)
	got := b.Line(b.start.Add(2 * time.Second))
	for _, want := range []string{"pack", "2.0 MiB / 8.0 MiB (25%)", "1.0 MiB/s", "ETA 6s"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	// No ETA in the first instants, nor before 1% is done.
	if l := b.Line(b.start.Add(time.Second)); strings.Contains(l, "ETA") {
		t.Errorf("an ETA after one second: %q", l)
	}
	s := New(nil, "pack", 1<<30)
	s.Add(1 << 20)
	if l := s.Line(s.start.Add(10 * time.Second)); strings.Contains(l, "ETA") {
		t.Errorf("an ETA at 0.1%%: %q", l)
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

// TestPart: an item's bytes count into the bar as they are read or
// written, never past the item's size (a codec that reads a blob again),
// and Done tops it up to the size, so the bar ends at its total.
func TestPart(t *testing.T) {
	bar := New(nil, "pack: encoding 2 changed layers", 300)
	a, b := bar.Part(100), bar.Part(200)
	io.Copy(io.Discard, a.Reader(strings.NewReader(strings.Repeat("x", 60))))
	io.Copy(io.Discard, a.Reader(strings.NewReader(strings.Repeat("x", 100)))) // read again: capped
	if got := a.n.Load(); got != 100 {
		t.Fatalf("part a counted %d bytes, want 100", got)
	}
	io.Copy(b.Writer(io.Discard), strings.NewReader(strings.Repeat("x", 50)))
	if l := bar.Line(time.Now().Add(3 * time.Second)); !strings.Contains(l, "150 B / 300 B (50%)") || !strings.Contains(l, "ETA") {
		t.Fatalf("midway: %q", l)
	}
	b.Done()
	a.Done()
	if l := bar.Line(time.Now().Add(time.Second)); !strings.Contains(l, "300 B / 300 B (100%)") {
		t.Fatalf("at the end: %q", l)
	}
	var none *Bar
	p := none.Part(10)
	if r := strings.NewReader("x"); p.Reader(r) != r {
		t.Fatal("a nil part wraps the reader")
	}
	if p.Writer(io.Discard) != io.Discard || p.Scaled(io.Discard, 10, 5) != io.Discard {
		t.Fatal("a nil part wraps the writer")
	}
	p.Add(1)
	p.Done()
}

// TestPartScaled: a stage of 1000 bytes standing for half of a 100-byte
// part counts 50 bytes when written in uneven pieces (no rounding drift),
// then the output's own bytes count the rest.
func TestPartScaled(t *testing.T) {
	bar := New(nil, "resolve", 100)
	p := bar.Part(100)
	w := p.Scaled(io.Discard, 1000, 50)
	for _, n := range []int{3, 7, 333, 1, 656} {
		w.Write(make([]byte, n))
	}
	if got := p.n.Load(); got != 50 {
		t.Fatalf("the scaled stage counted %d bytes, want 50", got)
	}
	io.Copy(p.Writer(io.Discard), strings.NewReader(strings.Repeat("x", 100)))
	if got := p.n.Load(); got != 100 {
		t.Fatalf("the part counted %d bytes, want 100", got)
	}
}

// TestRateWindow: once a bar has run longer than the window, its rate and
// ETA come from the last few seconds: 100 MiB that went by in the first
// instant (a reused layer) do not hide that the rest crawls.
func TestRateWindow(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "resolve", 200<<20)
	now := b.start
	b.now = func() time.Time { return now }
	now = now.Add(time.Second)
	b.Add(100 << 20)
	for i := 0; i < 20; i++ {
		now = now.Add(500 * time.Millisecond)
		b.Add(1 << 20)
	}
	got := b.Line(now)
	for _, want := range []string{"120.0 MiB / 200.0 MiB (60%)", "2.0 MiB/s", "ETA 40s"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	// Under a second left: "ETA 1s", not "ETA 0s" while bytes remain.
	b.Add(80<<20 - 1)
	if got := b.Line(now); !strings.Contains(got, "ETA 1s") {
		t.Errorf("nearly done: %q", got)
	}
}

// TestSetLabel: a new label draws at once, even within the interval
// since the last draw (a phase's step with no bytes after it), and keeps
// the bytes counted; a nil bar takes it silently.
func TestSetLabel(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "plan: detecting the compressors", 0)
	now := b.start
	b.now = func() time.Time { return now }
	now = now.Add(time.Second)
	b.Add(3 << 20)
	now = now.Add(time.Millisecond)
	b.SetLabel("plan: detecting the compressor of layer 1/2")
	draws := strings.Split(out.String(), "\r\033[K")
	if len(draws) != 3 || !strings.HasPrefix(draws[1], "plan: detecting the compressors  3.0 MiB  ") ||
		!strings.HasPrefix(draws[2], "plan: detecting the compressor of layer 1/2  3.0 MiB  ") {
		t.Fatalf("draws %q", draws)
	}
	var none *Bar
	none.SetLabel("x")
	New(nil, "silent", 0).SetLabel("x")
}

// TestCountOpener: every reader the opener opens counts what is read
// from it (a blob read twice counts twice), and closes what it wraps;
// an opener's error comes back as it is.
func TestCountOpener(t *testing.T) {
	var n int64
	closed := 0
	open := CountOpener(func() (io.ReadCloser, error) {
		return closer{strings.NewReader(strings.Repeat("x", 100)), &closed}, nil
	}, func(d int64) { n += d })
	for range 2 {
		rc, err := open()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	if n != 200 || closed != 2 {
		t.Fatalf("counted %d bytes, closed %d; want 200, 2", n, closed)
	}
	boom := io.ErrUnexpectedEOF
	if _, err := CountOpener(func() (io.ReadCloser, error) { return nil, boom }, func(int64) {})(); err != boom {
		t.Fatalf("opener error: %v", err)
	}
}

type closer struct {
	io.Reader
	n *int
}

func (c closer) Close() error { *c.n++; return nil }
