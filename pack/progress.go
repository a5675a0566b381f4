package pack

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/diffah/diffah/internal/progress"
)

// encodeBar draws the encoding phase (nil without o.Progress): the
// compressed bytes of the n changed layers (total bytes), as their
// patches read them, with rate and ETA.
func (st *state) encodeBar(n int, total int64) *progress.Bar {
	if st.o.Progress == nil || n == 0 {
		return nil
	}
	what := "layers"
	if n == 1 {
		what = "layer"
	}
	return progress.New(st.o.Progress, fmt.Sprintf("pack: encoding %d changed %s", n, what), total)
}

// layerBar counts one layer's compressed bytes into the encoding bar as
// they are read, at most the layer's size; done adds what was not read
// that way (codecs that read the blob on their own), so the bar ends at
// its total.
type layerBar struct {
	bar  *progress.Bar
	size int64
	n    atomic.Int64
}

// reader counts r's bytes into the bar.
func (l *layerBar) reader(r io.Reader) io.Reader {
	if l == nil || l.bar == nil {
		return r
	}
	return progress.CountReader(r, l.add)
}

func (l *layerBar) add(n int64) {
	for {
		old := l.n.Load()
		d := min(n, l.size-old)
		if d <= 0 {
			return
		}
		if l.n.CompareAndSwap(old, old+d) {
			l.bar.Add(d)
			return
		}
	}
}

func (l *layerBar) done() {
	if l != nil && l.bar != nil {
		l.add(l.size)
	}
}
