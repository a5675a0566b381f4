// Package progress draws a one-line progress display (bytes, rate, ETA) on
// stderr when stderr is a terminal, and nothing otherwise: stdout is data
// and logs must stay clean in pipes and CI.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
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
}

// Enabled reports whether progress should be drawn on w.
func Enabled(w io.Writer, quiet bool) bool {
	f, ok := w.(*os.File)
	return !quiet && ok && term.IsTerminal(int(f.Fd()))
}

// New returns a bar drawing on w, or a silent one when w is nil.
func New(w io.Writer, label string, total int64) *Bar {
	return &Bar{w: w, label: label, total: total, start: time.Now(), now: time.Now, every: 200 * time.Millisecond}
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
	el := t.Sub(b.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b.done) / el
	}
	s := fmt.Sprintf("%s  %s", b.label, units.Bytes(b.done))
	if b.total > 0 {
		s += fmt.Sprintf(" / %s (%d%%)", units.Bytes(b.total), 100*b.done/b.total)
	}
	s += fmt.Sprintf("  %s/s", units.Bytes(int64(rate)))
	if b.total > 0 && rate > 0 && b.done < b.total {
		eta := time.Duration(float64(b.total-b.done)/rate) * time.Second
		s += "  ETA " + eta.Round(time.Second).String()
	}
	return s
}

func (b *Bar) draw(t time.Time) {
	fmt.Fprintf(b.w, "\r\033[K%s", b.Line(t))
	b.drawn = true
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
func (b *Bar) Writer(w io.Writer) io.Writer { return &pw{w: w, b: b} }

// Reader counts bytes read through it into the bar.
func (b *Bar) Reader(r io.Reader) io.Reader { return CountReader(r, b.Add) }

// CountReader calls add with the number of bytes of each read from r.
func CountReader(r io.Reader, add func(int64)) io.Reader { return &pr{r: r, add: add} }

type pw struct {
	w io.Writer
	b *Bar
}

func (p *pw) Write(d []byte) (int, error) {
	n, err := p.w.Write(d)
	p.b.Add(int64(n))
	return n, err
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
