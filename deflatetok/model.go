package deflatetok

import (
	"encoding/binary"
	"io"
	"math/bits"
)

// A model of the zlib/gzip deflate family (built from RFC 1951 and the
// published description of its matcher: 3-byte hash chains over a 32 KiB
// window, greedy matching for the fast levels and lazy matching for the
// others, with the per-level good/lazy/nice/chain parameters). It
// predicts each token of a stream from the content and the tokens before
// it; the model form (modelcodec.go) records only where the real stream
// differs. It is driven by the real tokens, so one wrong prediction costs
// one correction and the model stays in step afterwards.

// Params are the matcher's parameters.
type Params struct {
	// Family is the compressor modelled (FamilyZlib: this file's model).
	Family Family
	// Lazy selects lazy matching (zlib and gzip levels 4–9); else greedy.
	Lazy bool
	// Good: at a previous match this long the chain is searched a
	// quarter as far. MaxLazy: a match this long is not bettered (lazy),
	// or is the longest whose strings are hashed (greedy). Nice: a match
	// this long ends the search. Chain: how many chain entries are tried.
	Good, MaxLazy, Nice, Chain int
	// Lazy2 (libdeflate) also looks two positions ahead.
	Lazy2 bool
}

// Levels are the matcher parameters FitParams chooses among, by index:
// the zlib/GNU gzip levels 1–9, then libdeflate's from LibdeflateLevel
// on (zero where a level is not modelled).
var Levels = append([]Params{
	{},
	{Lazy: false, Good: 4, MaxLazy: 4, Nice: 8, Chain: 4},
	{Lazy: false, Good: 4, MaxLazy: 5, Nice: 16, Chain: 8},
	{Lazy: false, Good: 4, MaxLazy: 6, Nice: 32, Chain: 32},
	{Lazy: true, Good: 4, MaxLazy: 4, Nice: 16, Chain: 16},
	{Lazy: true, Good: 8, MaxLazy: 16, Nice: 32, Chain: 32},
	{Lazy: true, Good: 8, MaxLazy: 16, Nice: 128, Chain: 128},
	{Lazy: true, Good: 8, MaxLazy: 32, Nice: 128, Chain: 256},
	{Lazy: true, Good: 32, MaxLazy: 128, Nice: 258, Chain: 1024},
	{Lazy: true, Good: 32, MaxLazy: 258, Nice: 258, Chain: 4096},
}, libdeflateLevels[:]...)

const (
	wSize    = 1 << 15
	wMask    = wSize - 1
	hBits    = 15
	hMask    = 1<<hBits - 1
	minMatch = 3
	maxMatch = 258
	// maxDist is the farthest a match reaches (the window less the
	// lookahead the matcher keeps).
	maxDist = wSize - 262
	tooFar  = 4096
)

// token is a literal (0) or a match: length<<16 | distance-1.
type token uint32

func matchTok(length, dist int) token { return token(length<<16 | (dist - 1)) }
func (t token) length() int           { return int(t >> 16) }
func (t token) dist() int             { return int(t&0xffff) + 1 }

// span is how many content bytes t covers.
func (t token) span() int {
	if t == 0 {
		return 1
	}
	return t.length()
}

// window holds the content around the model's position: at least the
// 32 KiB before it and what the matcher looks ahead.
type window struct {
	r    io.Reader
	buf  []byte
	base int64 // content offset of buf[0]
	eof  bool
	err  error
}

const windowCap = 1 << 20

// fill makes the content up to end available (or all there is).
func (w *window) fill(end, keep int64) {
	for !w.eof && w.base+int64(len(w.buf)) < end {
		if len(w.buf) == cap(w.buf) {
			// Drop what is older than keep.
			drop := keep - w.base
			if drop <= 0 {
				nb := make([]byte, len(w.buf), 2*cap(w.buf))
				copy(nb, w.buf)
				w.buf = nb
			} else {
				n := copy(w.buf, w.buf[drop:])
				w.buf = w.buf[:n]
				w.base += drop
			}
		}
		n, err := w.r.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+n]
		if err == io.EOF {
			w.eof = true
		} else if err != nil {
			w.eof, w.err = true, err
		}
	}
}

// end is the content offset just past what the window holds.
func (w *window) end() int64 { return w.base + int64(len(w.buf)) }

// model is the matcher's state over one stream.
type model struct {
	p   Params
	win *window
	// head and prev are the hash chains, as content offset+1-off (0:
	// none): 16-bit, as the family's own matcher keeps them, so that
	// both (128 KiB) stay near the core; rebase moves off on every 32 KiB
	// or so, before offsets outgrow them.
	head [1 << hBits]uint16
	prev [wSize]uint16
	off  int64
	// start is the offset where the stream's window begins (never a
	// match source); ins is the next offset to hash (lazy mode).
	start, ins int64
	// end is where the compressor's input ended (or the content's end).
	end int64
	// pending: the match at the next position is already searched.
	pending  bool
	pendLen  int
	pendDist int
	// nextLen, nextDist: the match at q+1 that predict searched.
	nextLen, nextDist int
}

func newModel(p Params, w *window) *model {
	return &model{p: p, win: w}
}

// reset starts a stream at offset pos whose window is primed with the
// content from dict on (a preset dictionary, as pigz primes each chunk).
func (m *model) reset(dict, pos int64) {
	clear(m.head[:])
	clear(m.prev[:])
	m.off = dict
	m.start, m.ins = dict, dict
	m.pending = false
	m.end = noEnd
	if dict < pos {
		m.win.fill(pos+maxMatch+2, dict)
		m.insertTo(pos-1, m.win.end())
	}
}

// noEnd is the end of a stream whose input goes on past the block.
const noEnd = int64(1) << 62

// rebaseAt is how far past off an offset may be hashed before off moves
// (libdeflate's model: 32-bit chains).
var rebaseAt int64 = 1 << 31

// lastStored is the farthest past off an offset may be hashed in the
// zlib model's 16-bit chains (its stored value, offset+1-off, fits).
const lastStored = 1<<16 - 2

// keepBack is how far before the offset being hashed the zlib model's
// chains keep their entries when they rebase: a window, and the few
// bytes the hashing runs ahead of the search (at most a lazy step).
const keepBack = wSize + 1024

// rebase moves off up to keepBack before p: entries older than that
// (beyond any match's reach) become none.
func (m *model) rebase(p int64) {
	d := p - keepBack - m.off
	if d <= 0 {
		return
	}
	m.off += d
	if d > lastStored {
		clear(m.head[:])
		clear(m.prev[:])
		return
	}
	for _, t := range [][]uint16{m.head[:], m.prev[:]} {
		for i, v := range t {
			// v-d, or none where that is not above 0 (without a branch,
			// which would mispredict on every other entry).
			x := int32(v) - int32(d)
			t[i] = uint16(x &^ (x >> 31))
		}
	}
}

func hash3(b []byte) int {
	return (int(b[0])<<10 ^ int(b[1])<<5 ^ int(b[2])) & hMask
}

// insert hashes the string at p (which has three bytes of input).
func (m *model) insert(p int64) {
	if p-m.off > lastStored {
		m.rebase(p)
	}
	b := m.win.buf[p-m.win.base:]
	h := hash3(b)
	m.prev[p&wMask] = m.head[h]
	m.head[h] = uint16(p + 1 - m.off)
}

// insertTo hashes every offset up to last not hashed yet that has three
// bytes of input before limit.
func (m *model) insertTo(last, limit int64) {
	if e := m.win.end(); e < limit {
		limit = e
	}
	if last > limit-minMatch {
		last = limit - minMatch
	}
	for m.ins <= last {
		if m.ins-m.off > lastStored {
			m.rebase(m.ins)
		}
		// As far as the chains hold offsets without a rebase.
		seg := min(last, m.off+lastStored)
		buf := m.win.buf[m.ins-m.win.base : seg-m.win.base+minMatch]
		v := uint16(m.ins + 1 - m.off)
		for i := 0; i+minMatch <= len(buf); i++ {
			h := hash3(buf[i:])
			m.prev[(m.ins+int64(i))&wMask] = m.head[h]
			m.head[h] = v
			v++
		}
		m.ins = seg + 1
	}
}

// search finds the longest match at p longer than prevLen (the
// matcher's longest_match), returning length and distance; a length of
// at most prevLen means none better was found.
func (m *model) search(p int64, prevLen int) (int, int) {
	if p+minMatch > m.end || p+minMatch > m.win.end() {
		return minMatch - 1, 0 // not hashed: no search
	}
	// The chain head when p was hashed; limit is the oldest offset a
	// match may start after (both as stored: offset+1-off).
	// The first candidate may be maxDist back, the chain's only less
	// (as the family's matcher has it).
	v := m.prev[p&wMask]
	if int64(v) <= m.start+1-m.off || int64(v) < p-maxDist+1-m.off {
		return minMatch - 1, 0
	}
	lim := max(p-maxDist, m.start) + 1 - m.off
	limit := uint16(max(lim, 0))
	chain := m.p.Chain
	if prevLen >= m.p.Good {
		chain >>= 2
	}
	look := m.end - p
	if e := m.win.end() - p; e < look {
		look = e
	}
	nice := m.p.Nice
	if int64(nice) > look {
		nice = int(look)
	}
	max := maxMatch
	if int64(max) > look {
		max = int(look)
	}
	best, bestDist := prevLen, 0
	if best >= max {
		return best, 0 // nothing can be longer
	}
	buf := m.win.buf
	ps := int(p - m.win.base)
	scan := buf[ps : ps+max]
	// delta turns a stored offset into an index in buf, pm into an
	// index in prev.
	delta := int(m.off - 1 - m.win.base)
	pm := int(m.off - 1)
	pv := int(p + 1 - m.off)
	// A candidate can be longer than best only if it agrees at best-1
	// and best, and (a match at all) at 0 and 1.
	end := binary.LittleEndian.Uint16(scan[best-1:])
	start := binary.LittleEndian.Uint16(scan)
	prev := &m.prev
	for {
		// The chain's next candidate that agrees at best-1 and best
		// and at 0 and 1 (a loop of its own: most are passed over).
		be := buf[best-1:]
		i := int(v) + delta
		for uint16(be[i])|uint16(be[i+1])<<8 != end || uint16(buf[i])|uint16(buf[i+1])<<8 != start {
			chain--
			next := prev[(int(v)+pm)&wMask]
			if next <= limit || chain == 0 {
				return best, bestDist
			}
			v = next
			i = int(v) + delta
		}
		n := matchLen(buf[i:i+max], scan)
		if n > best {
			best, bestDist = n, pv-int(v)
			if n >= nice || n >= max {
				break
			}
			end = binary.LittleEndian.Uint16(scan[best-1:])
		}
		chain--
		next := prev[(int(v)+pm)&wMask]
		if next <= limit || chain == 0 {
			break
		}
		v = next
	}
	return best, bestDist
}

// matchLen is the length of the common prefix of a and b (len(a) ≥
// len(b)), compared eight bytes at a time.
func matchLen(a, b []byte) int {
	n := 0
	for n+8 <= len(b) {
		x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// predict is the token the compressor would write at q.
func (m *model) predict(q int64) token {
	m.win.fill(q+maxMatch+2, q-wSize-1)
	if !m.p.Lazy {
		m.insertTo(q, m.end)
		l, d := m.search(q, minMatch-1)
		if l >= minMatch {
			return matchTok(l, d)
		}
		return 0
	}
	// Lazy: the match at q (already searched when the token before was a
	// literal decided by it), then whether the match at q+1 is longer.
	if !m.pending {
		m.insertTo(q, m.end)
		m.pendLen, m.pendDist = m.lazySearch(q, minMatch-1)
	}
	l, d := m.pendLen, m.pendDist
	if q+1 >= m.end || q+1 >= m.win.end() {
		m.nextLen, m.nextDist = minMatch-1, 0
		if l >= minMatch {
			return matchTok(l, d)
		}
		return 0
	}
	m.insertTo(q+1, m.end)
	nl, nd := minMatch-1, 0
	if l < m.p.MaxLazy {
		nl, nd = m.lazySearch(q+1, l)
	}
	m.nextLen, m.nextDist = nl, nd
	if l >= minMatch && nl <= l {
		return matchTok(l, d)
	}
	return 0
}

// lazySearch is search with lazy matching's rule against far 3-byte
// matches.
func (m *model) lazySearch(p int64, prevLen int) (int, int) {
	l, d := m.search(p, prevLen)
	if l <= prevLen {
		return minMatch - 1, 0
	}
	if l == minMatch && d > tooFar {
		return minMatch - 1, 0
	}
	return l, d
}

// advance moves the model past the real token t at q (the one predict
// was asked about).
func (m *model) advance(q int64, t token) {
	if !m.p.Lazy {
		if t != 0 {
			l := t.length()
			if l <= m.p.MaxLazy && m.end-(q+int64(l)) >= minMatch {
				for p := q + 1; p < q+int64(l); p++ {
					m.insert(p)
				}
			}
			m.ins = q + int64(l)
		} else {
			m.ins = q + 1
		}
		return
	}
	if t != 0 {
		m.pending = false
		return
	}
	m.pending = true
	m.pendLen, m.pendDist = m.nextLen, m.nextDist
}

// rankOf is the rank of the match (l, d) at q among the chain's
// candidates at q, nearest first, counting only those at least l long;
// false when d is not among the first maxRankWalk candidates.
func (m *model) rankOf(q int64, l, d int) (int, bool) { return rankIn(m.walk, q, l, d) }

// ofRank is the distance of the rank+1-th candidate at q at least l
// long (rankOf's inverse).
func (m *model) ofRank(q int64, l, rank int) (int, bool) { return ofRankIn(m.walk, q, l, rank) }

// maxRankWalk bounds a rank's chain walk (and so what a hostile form
// costs: no more than a search with zlib's level-9 chain).
const maxRankWalk = 1024

// walk calls f with the distance and match length at q of each chain
// candidate, nearest first, until f returns true (walk returns true) or
// the chain ends.
func (m *model) walk(q int64, f func(dist, n int) bool) bool {
	if q+minMatch > m.win.end() {
		return false
	}
	lim := uint16(max(max(q-maxDist, m.start)+1-m.off, 0))
	return walkFrom(m.win, q, m.off, m.prev[q&wMask], lim, &m.prev, maxRankWalk, f)
}

// walkFrom calls f with the distance and match length at q of each
// candidate from v on (offsets stored as offset+1-off, each linked to
// the next by links) above lim, at most n of them, until f returns true
// (walkFrom returns true).
func walkFrom[T uint16 | uint32](w *window, q, off int64, v, lim T, links *[wSize]T, n int, f func(dist, n int) bool) bool {
	look := min(w.end()-q, maxMatch)
	buf := w.buf
	scan := buf[q-w.base : q-w.base+look]
	delta := int(off - 1 - w.base)
	pv := int(q + 1 - off)
	for k := 0; v > lim && k < n; k++ {
		i := int(v) + delta
		if f(pv-int(v), matchLen(buf[i:i+int(look)], scan)) {
			return true
		}
		v = links[(int(v)+int(off-1))&wMask]
	}
	return false
}
