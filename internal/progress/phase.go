package progress

import (
	"fmt"
	"io"
	"sync"
)

// Phase draws one status line saying what is happening ("plan: detecting
// the compressor of layer 3/5"), replaced by each Set and cleared by
// Done; silent when w is nil.
type Phase struct {
	mu    sync.Mutex
	w     io.Writer
	drawn bool
}

// NewPhase returns a status line drawing on w (nil: silent).
func NewPhase(w io.Writer) *Phase { return &Phase{w: w} }

// Set replaces the line.
func (p *Phase) Set(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K"+format, args...)
	p.drawn = true
}

// Done clears the line.
func (p *Phase) Done() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
