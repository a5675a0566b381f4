package deflatetok

// matcher is a compressor's matcher model, as the model form drives it:
// it predicts the token at each position and is moved past the real one.
type matcher interface {
	// reset starts a stream at pos whose window is primed from dict on.
	reset(dict, pos int64)
	// block starts a block at pos; end is where the compressor's input
	// ends, or noEnd when not within the block.
	block(pos, end int64)
	// predict is the token the compressor would write at q.
	predict(q int64) token
	// step moves past the real token t at q, which predict called pred.
	step(q int64, t, pred token)
	// rankOf names the match (l, d) at q by its rank among the
	// candidates at least l long (false: not among them); ofRank is its
	// inverse.
	rankOf(q int64, l, d int) (int, bool)
	ofRank(q int64, l, rank int) (int, bool)
}

// newMatcher is the matcher model of p's family.
func newMatcher(p Params, w *window) matcher {
	if p.Family == FamilyLibdeflate {
		return newLDModel(p, w)
	}
	return newModel(p, w)
}

func (m *model) block(_, end int64)       { m.end = end }
func (m *model) step(q int64, t, _ token) { m.advance(q, t) }

// rankIn is rankOf over the candidates walk yields.
func rankIn(walk func(q int64, f func(dist, n int) bool) bool, q int64, l, d int) (int, bool) {
	rank := 0
	ok := walk(q, func(dist, n int) bool {
		if dist == d {
			return true
		}
		if n >= l {
			rank++
		}
		return false
	})
	return rank, ok
}

// ofRankIn is ofRank over the candidates walk yields.
func ofRankIn(walk func(q int64, f func(dist, n int) bool) bool, q int64, l, rank int) (int, bool) {
	d := 0
	ok := walk(q, func(dist, n int) bool {
		if n < l {
			return false
		}
		if rank == 0 {
			d = dist
			return true
		}
		rank--
		return false
	})
	return d, ok
}
