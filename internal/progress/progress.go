// Package progress draws a one-line progress display (bytes, rate, ETA) on
// stderr when stderr is a terminal, and nothing otherwise: stdout is data
// and logs must stay clean in pipes and CI.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/diffah/diffah/internal/units"
)

// Bar tracks bytes done out of a total (0 = unknown).
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int64
	done  int64
	start time.Time
	last  time.Time
	now   func() time.Time
	every time.Duration
	drawn bool
	// recent holds the state at recent draws: the rate is taken over
	// the last rateWindow, so bytes that went by in an instant (a layer
	// reused, a blob linked) do not make the ETA of the slow part 0s.
	recent []sample
}

type sample struct {
	t    time.Time
	done int64
}

// rateWindow is how far back the rate looks once that much has passed.
const rateWindow = 5 * time.Second

// etaAfter is how long a bar runs before it shows an ETA.
const etaAfter = 2 * time.Second

// Interval is the least time between two draws of a bar (a test that
// follows every step of a bar sets it to 0).
var Interval = 200 * time.Millisecond

// Enabled reports whether progress should be drawn on w.
func Enabled(w io.Writer, quiet bool) bool {
	f, ok := w.(*os.File)
	return !quiet && ok && term.IsTerminal(int(f.Fd()))
}

// New returns a bar drawing on w, or a silent one when w is nil.
func New(w io.Writer, label string, total int64) *Bar {
	return &Bar{w: w, label: label, total: total, start: time.Now(), now: time.Now, every: Interval}
}

// Add records n more bytes done.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.w == nil {
		return
	}
	if t := b.now(); t.Sub(b.last) >= b.every {
		b.last = t
		b.draw(t)
	}
}

// Line renders the bar's current state (exported for tests).
func (b *Bar) Line(t time.Time) string {
	from := sample{b.start, 0}
	for _, s := range b.recent {
		if t.Sub(s.t) < rateWindow {
			break
		}
		from = s
	}
	el := t.Sub(from.t).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b.done-from.done) / el
	}
	s := fmt.Sprintf("%s  %s", b.label, units.Bytes(b.done))
	if b.total > 0 {
		s += fmt.Sprintf(" / %s (%d%%)", units.Bytes(b.total), 100*b.done/b.total)
	}
	s += fmt.Sprintf("  %s/s", units.Bytes(int64(rate)))
	// An ETA from the first instants (a reader's first buffer, a slow
	// start) is noise: it waits for etaAfter and 1% of the total.
	if b.total > 0 && rate > 0 && b.done < b.total && t.Sub(b.start) >= etaAfter && b.done*100 >= b.total {
		eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
		s += "  ETA " + max(eta.Round(time.Second), time.Second).String()
	}
	return s
}

func (b *Bar) draw(t time.Time) {
	fmt.Fprintf(b.w, "\r\033[K%s", b.Line(t))
	b.drawn = true
	// Keep one sample older than the window, and the ones inside it.
	b.recent = append(b.recent, sample{t, b.done})
	for len(b.recent) > 1 && t.Sub(b.recent[1].t) >= rateWindow {
		b.recent = b.recent[1:]
	}
}

// SetLabel replaces the bar's label and draws the bar at once: a step of
// its phase (the layers done so far) shows even when no bytes follow.
func (b *Bar) SetLabel(label string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.label = label
	if b.w != nil {
		b.last = b.now()
		b.draw(b.last)
	}
}

// Done clears the line.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w != nil && b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}

// Writer counts bytes written through it into the bar.
func (b *Bar) Writer(w io.Writer) io.Writer { return &pw{w: w, add: b.Add} }

// Reader counts bytes read through it into the bar.
func (b *Bar) Reader(r io.Reader) io.Reader { return CountReader(r, b.Add) }

// CountReader calls add with the number of bytes of each read from r.
func CountReader(r io.Reader, add func(int64)) io.Reader { return &pr{r: r, add: add} }

type pw struct {
	w   io.Writer
	add func(int64)
}

func (p *pw) Write(d []byte) (int, error) {
	n, err := p.w.Write(d)
	p.add(int64(n))
	return n, err
}

// CountOpener wraps open so that every reader it opens counts its bytes
// with add.
func CountOpener(open func() (io.ReadCloser, error), add func(int64)) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{CountReader(rc, add), rc}, nil
	}
}

type pr struct {
	r   io.Reader
	add func(int64)
}

func (p *pr) Read(d []byte) (int, error) {
	n, err := p.r.Read(d)
	p.add(int64(n))
	return n, err
}

// Part is one item's share of a bar (a layer of the encoding phase, a
// blob of resolve): at most size bytes of it count, however often its
// bytes are read or written (a codec that reads a blob twice, a retry),
// and Done adds what did not, so the bar ends at its total. A nil Part
// (no bar) counts nothing and wraps nothing.
type Part struct {
	bar  *Bar
	size int64
	n    atomic.Int64
}

// Part returns the share of size bytes of b (nil when b is nil).
func (b *Bar) Part(size int64) *Part {
	if b == nil {
		return nil
	}
	return &Part{bar: b, size: size}
}

// Add counts n more bytes of the part, up to its size.
func (p *Part) Add(n int64) {
	if p == nil {
		return
	}
	for {
		old := p.n.Load()
		d := min(n, p.size-old)
		if d <= 0 {
			return
		}
		if p.n.CompareAndSwap(old, old+d) {
			p.bar.Add(d)
			return
		}
	}
}

// Reader counts r's bytes into the part (r itself for a nil part).
func (p *Part) Reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return CountReader(r, p.Add)
}

// Writer counts the bytes written to w into the part (w itself for a nil
// part).
func (p *Part) Writer(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return &pw{w: w, add: p.Add}
}

// Scaled counts the bytes written to w as share/of of each byte: a stage
// of of bytes that stands for share bytes of the part (the tar a patch
// decodes before the blob is written).
func (p *Part) Scaled(w io.Writer, of, share int64) io.Writer {
	if p == nil || of <= 0 {
		return w
	}
	s := &scaled{p: p, of: of, share: share}
	return &pw{w: w, add: s.add}
}

type scaled struct {
	p         *Part
	of, share int64
	in, out   int64
}

// add counts share*in/of in all, computed on the running total so that
// rounding does not drift.
func (s *scaled) add(n int64) {
	s.in = min(s.in+n, s.of)
	want := int64(float64(s.share) * float64(s.in) / float64(s.of))
	if want > s.out {
		s.p.Add(want - s.out)
		s.out = want
	}
}

// Done counts what is left of the part's size.
func (p *Part) Done() {
	if p != nil {
		p.Add(p.size)
	}
}
