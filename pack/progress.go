package pack

import (
	"fmt"

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
