package deflatetok

import (
	"encoding/binary"
	"math/bits"
	"strconv"
)

// A model of libdeflate's matcher at its levels 2–9, written from
// the published description of its algorithm (no code of it): the
// whole input is one stream over a 32 KiB window; each position is
// hashed into a table of one entry per 3-byte hash (the latest position)
// and into chains by a 4-byte hash; a search takes the 3-byte entry as a
// length-3 candidate and walks the 4-byte chain to a per-level depth,
// stopping at the level's nice length. The parse is greedy (levels 2–4),
// lazy (levels 5–7:
// the match at the next position, searched to half the depth, replaces
// the current one when it is better by a score of lengths and distance
// magnitudes) or "lazy2" (8–9: also the position after that, to a
// quarter of the depth, when better by more). A block chooses a minimum
// match length from how many distinct literals its data uses, and (lazy)
// again from the literals it coded so far as it grows. Block boundaries and
// Huffman headers come from the model form, as for the zlib model.

// Family names the compressor a Params models.
type Family uint8

const (
	// FamilyZlib is zlib, GNU gzip and pigz (model.go).
	FamilyZlib Family = iota
	// FamilyLibdeflate is libdeflate's levels 2–9 (this file).
	FamilyLibdeflate
)

// LibdeflateLevel is the index in Levels of libdeflate's level 0:
// its level L is Levels[LibdeflateLevel+L] (only 2–9 are modelled).
const LibdeflateLevel = 10

// libdeflateLevels are libdeflate's levels 2–9: greedy, lazy or lazy2,
// nice length and search depth.
var libdeflateLevels = [...]Params{
	2: {Family: FamilyLibdeflate, Nice: 10, Chain: 6},
	3: {Family: FamilyLibdeflate, Nice: 14, Chain: 12},
	4: {Family: FamilyLibdeflate, Nice: 30, Chain: 16},
	5: {Family: FamilyLibdeflate, Lazy: true, Nice: 30, Chain: 16},
	6: {Family: FamilyLibdeflate, Lazy: true, Nice: 65, Chain: 35},
	7: {Family: FamilyLibdeflate, Lazy: true, Nice: 130, Chain: 100},
	8: {Family: FamilyLibdeflate, Lazy: true, Lazy2: true, Nice: 258, Chain: 300},
	9: {Family: FamilyLibdeflate, Lazy: true, Lazy2: true, Nice: 258, Chain: 600},
}

// LevelName names Levels[i] for people ("zlib/gzip level 6",
// "libdeflate level 6").
func LevelName(i int) string {
	if i >= LibdeflateLevel {
		return "libdeflate level " + strconv.Itoa(i-LibdeflateLevel)
	}
	return "zlib/gzip level " + strconv.Itoa(i)
}

const (
	ldHash3Bits = 15
	ldHash4Bits = 16
	// ldMaxDist: a candidate is at most this far back (a window of
	// 32 KiB less one).
	ldMaxDist = wSize - 1
	// ldNeed is how many bytes of input a search needs at its position.
	ldNeed = 5
	// ldFar3: a length-3 match farther than this is not taken.
	ldFar3 = 8192
	// ldFar3Greedy is ldFar3 at the greedy levels.
	ldFar3Greedy = 4096
	// ldRecalc is how far into a block its minimum match length is first
	// chosen again (from the literals coded so far); then each time the
	// block has doubled.
	ldRecalc = 10000
	// ldMaxDepth bounds the search depth a model form may name (level
	// 9's is 600; each position's searches walk up to 1.75 times it).
	ldMaxDepth = 1024
)

// ld parse states: what the compressor knows at the model's position.
const (
	ldFresh = iota // nothing: the position is searched
	ldCur          // a match at the position, found by a look-ahead
	ldLit2         // a literal, then the look-ahead match at the next position
)

// ldModel is libdeflate's matcher state over one stream.
type ldModel struct {
	p   Params
	win *window
	// h3 holds the latest position of each 3-byte hash, h4 the chain
	// heads of each 4-byte hash; next links each position to the
	// previous one of its 4-byte hash and prev3 keeps the 3-byte entry
	// it replaced, so a position can be searched after later ones are
	// hashed. Offsets as in model: offset+1-off, 0 none.
	h3    [1 << ldHash3Bits]uint32
	h4    [1 << ldHash4Bits]uint32
	next  [wSize]uint32
	prev3 [wSize]uint32
	off   int64
	start int64
	ins   int64
	end   int64
	// The parse: state at the model's position, and the match the
	// look-ahead found there (ldCur) or one further (ldLit2).
	state            int
	curLen, curDist  int
	nState           int // the state after the predicted token
	nLen, nDist      int
	lookLen, lookDst int // the look-ahead match at q+1, for a mismatch
	// The block's minimum match length, when it is chosen again, and
	// the literals coded in it so far.
	minLen               int
	blockStart, recalcAt int64
	lits                 [256]int32
}

func newLDModel(p Params, w *window) *ldModel {
	return &ldModel{p: p, win: w, minLen: minMatch}
}

func (m *ldModel) reset(dict, pos int64) {
	clear(m.h3[:])
	clear(m.h4[:])
	clear(m.next[:])
	clear(m.prev3[:])
	m.off = dict
	m.start, m.ins = dict, dict
	m.end = noEnd
	m.state = ldFresh
	if dict < pos {
		m.win.fill(pos+maxMatch+2, dict)
		m.insertTo(pos - 1)
	}
}

// block starts a block at pos; end is where the input ends (noEnd: not
// in this block). The block's minimum match length comes from the
// distinct bytes of its first 4 KiB.
func (m *ldModel) block(pos, end int64) {
	m.end = end
	m.blockStart = pos
	clear(m.lits[:])
	m.win.fill(pos+4096, pos-wSize-1)
	m.recalcAt = pos + min(m.end-pos, ldRecalc)
	limit := min(m.end, m.win.end())
	if limit-pos < 512 {
		m.minLen = minMatch
		return
	}
	var used [256]bool
	n := 0
	for _, c := range m.win.buf[pos-m.win.base : min(pos+4096, limit)-m.win.base] {
		if !used[c] {
			used[c] = true
			n++
		}
	}
	m.minLen = m.ldMinLen(n)
}

// ldMinLen is the minimum match length for data using n distinct
// literals: the fewer, the cheaper a literal, the longer a match must
// be to pay (the steps measured on libdeflate 1.14's output).
func (m *ldModel) ldMinLen(n int) int {
	l := ldMinLenOf(n)
	// A shallow search finds few long matches.
	switch d := m.p.Chain; {
	case d < 5:
		l = min(l, 4)
	case d < 10:
		l = min(l, 5)
	case d < 16:
		l = min(l, 7)
	}
	return l
}

func ldMinLenOf(n int) int {
	switch {
	case n < 6:
		return 9
	case n < 8:
		return 8
	case n < 10:
		return 7
	case n < 16:
		return 6
	case n < 45:
		return 5
	case n < 80:
		return 4
	}
	return 3
}

func (m *ldModel) rebase(p int64) {
	d := p - 2*wSize - m.off
	if d <= 0 {
		return
	}
	m.off += d
	for _, t := range [][]uint32{m.h3[:], m.h4[:], m.next[:], m.prev3[:]} {
		for i, v := range t {
			if int64(v) <= d {
				t[i] = 0
			} else {
				t[i] = v - uint32(d)
			}
		}
	}
}

func ldHash(seq uint32, bits int) uint32 { return seq * 0x1E35A7BD >> (32 - bits) }

// insertTo hashes every position up to last not hashed yet that has
// four bytes of input.
func (m *ldModel) insertTo(last int64) {
	limit := min(m.end, m.win.end())
	last = min(last, limit-4)
	if m.ins > last {
		return
	}
	if last-m.off >= rebaseAt {
		m.rebase(m.ins)
	}
	buf := m.win.buf
	for p := m.ins; p <= last; p++ {
		seq := binary.LittleEndian.Uint32(buf[p-m.win.base:])
		h3, h4 := ldHash(seq&0xffffff, ldHash3Bits), ldHash(seq, ldHash4Bits)
		if p == m.start {
			// The first position of the input is hashed before any hash
			// is computed: into bucket 0 of both tables.
			h3, h4 = 0, 0
		}
		v := uint32(p + 1 - m.off)
		m.prev3[p&wMask] = m.h3[h3]
		m.h3[h3] = v
		m.next[p&wMask] = m.h4[h4]
		m.h4[h4] = v
	}
	m.ins = last + 1
}

// limit is the stored offset a candidate at p must be above.
func (m *ldModel) limit(p int64) uint32 {
	return uint32(max(max(p-ldMaxDist-1, m.start-1)+1-m.off, 0))
}

// search finds the longest match at p longer than best, walking the
// chain at most depth entries; a length of at most best means none.
func (m *ldModel) search(p int64, best, depth int) (int, int) {
	look := min(m.end, m.win.end()) - p
	if look < ldNeed {
		return best, 0
	}
	m.insertTo(p)
	maxLen := int(min(look, maxMatch))
	nice := min(m.p.Nice, maxLen)
	if best >= maxLen {
		return best, 0
	}
	buf := m.win.buf
	ps := int(p - m.win.base)
	scan := buf[ps : ps+maxLen]
	delta := int(m.off - 1 - m.win.base)
	pv := int(p + 1 - m.off)
	lim := m.limit(p)
	n3, n4 := m.prev3[p&wMask], m.next[p&wMask]
	bestDist := 0
	left := depth
	first := binary.LittleEndian.Uint32(scan)
	step := func() bool {
		n4 = m.next[(int(n4)+int(m.off-1))&wMask]
		left--
		return n4 > lim && left > 0
	}
	if best < 4 {
		if n3 <= lim {
			return best, bestDist
		}
		if best < 3 {
			i := int(n3) + delta
			if buf[i] == scan[0] && buf[i+1] == scan[1] && buf[i+2] == scan[2] {
				best, bestDist = 3, pv-int(n3)
			}
		}
		if n4 <= lim {
			return best, bestDist
		}
		for binary.LittleEndian.Uint32(buf[int(n4)+delta:]) != first {
			if !step() {
				return best, bestDist
			}
		}
		i := int(n4) + delta
		best, bestDist = 4+matchLen(buf[i+4:i+maxLen], scan[4:]), pv-int(n4)
		if best >= nice || !step() {
			return best, bestDist
		}
	} else if n4 <= lim || best >= nice {
		return best, bestDist
	}
	for {
		tail := binary.LittleEndian.Uint32(scan[best-3:])
		for {
			i := int(n4) + delta
			if binary.LittleEndian.Uint32(buf[i+best-3:]) == tail && binary.LittleEndian.Uint32(buf[i:]) == first {
				break
			}
			if !step() {
				return best, bestDist
			}
		}
		i := int(n4) + delta
		if n := 4 + matchLen(buf[i+4:i+maxLen], scan[4:]); n > best {
			best, bestDist = n, pv-int(n4)
			if best >= nice || best >= maxLen {
				return best, bestDist
			}
		}
		if !step() {
			return best, bestDist
		}
	}
}

// better says whether the match (nl, nd) a look-ahead found beats the
// current (l, d) by more than margin: four per byte of length, one per
// bit of distance saved.
func better(l, d, nl, nd, margin int) bool {
	return nl >= l && 4*(nl-l)+bits.Len32(uint32(d))-bits.Len32(uint32(nd)) > margin
}

func (m *ldModel) predict(q int64) token {
	m.win.fill(q+maxMatch+3, q-wSize-1)
	m.lookLen = 0
	switch m.state {
	case ldLit2:
		m.nState, m.nLen, m.nDist = ldCur, m.curLen, m.curDist
		return 0
	case ldCur:
		return m.evalCur(q, m.curLen, m.curDist)
	}
	if q >= m.recalcAt && m.p.Lazy {
		m.recalc(q)
	}
	l, d := m.search(q, m.minLen-1, m.p.Chain)
	if !m.p.Lazy {
		// Greedy: the match found, unless a far length-3 one.
		m.nState = ldFresh
		if l < m.minLen || l == minMatch && d > ldFar3Greedy {
			return 0
		}
		return matchTok(l, d)
	}
	if l < m.minLen || l == minMatch && d > ldFar3 {
		m.nState = ldFresh
		return 0
	}
	return m.evalCur(q, l, d)
}

// recalc chooses the block's minimum match length again from the
// literals it coded so far (ignoring the rarely used).
func (m *ldModel) recalc(q int64) {
	var total int32
	for _, c := range m.lits {
		total += c
	}
	cut := total >> 10
	n := 0
	for _, c := range m.lits {
		if c > cut {
			n++
		}
	}
	m.minLen = m.ldMinLen(n)
	m.recalcAt += min(m.end-m.recalcAt, q-m.blockStart)
}

// evalCur decides between the match (l, d) at q and what the look-ahead
// finds after it.
func (m *ldModel) evalCur(q int64, l, d int) token {
	m.nState = ldFresh
	if l >= min(m.p.Nice, int(min(m.end-q, maxMatch))) {
		return matchTok(l, d)
	}
	nl, nd := m.search(q+1, l-1, m.p.Chain>>1)
	if nl >= l {
		m.lookLen, m.lookDst = nl, nd
	}
	if nd != 0 && better(l, d, nl, nd, 2) {
		m.nState, m.nLen, m.nDist = ldCur, nl, nd
		return 0
	}
	if m.p.Lazy2 {
		nl, nd := m.search(q+2, l-1, m.p.Chain>>2)
		if nd != 0 && better(l, d, nl, nd, 6) {
			m.nState, m.nLen, m.nDist = ldLit2, nl, nd
			return 0
		}
	}
	return matchTok(l, d)
}

// step moves past the real token t at q, predicted by predict(q) as
// pred.
func (m *ldModel) step(q int64, t, pred token) {
	if t == 0 {
		m.lits[m.win.buf[q-m.win.base]]++
	}
	switch {
	case t == pred:
		m.state, m.curLen, m.curDist = m.nState, m.nLen, m.nDist
	case t != 0:
		m.state = ldFresh
	case m.lookLen > 0:
		// A literal where a match was predicted: the compressor likely
		// found the look-ahead's match better.
		m.state, m.curLen, m.curDist = ldCur, m.lookLen, m.lookDst
	default:
		m.state = ldFresh
	}
}

func (m *ldModel) rankOf(q int64, l, d int) (int, bool) {
	return rankIn(m.walk, q, l, d)
}

func (m *ldModel) ofRank(q int64, l, rank int) (int, bool) {
	return ofRankIn(m.walk, q, l, rank)
}

// walk calls f with the distance and match length at q of the 3-byte
// candidate then each 4-byte chain candidate, nearest first.
func (m *ldModel) walk(q int64, f func(dist, n int) bool) bool {
	m.insertTo(q)
	if q >= m.ins || q+minMatch > m.win.end() {
		return false
	}
	lim := m.limit(q)
	return walkFrom(m.win, q, m.off, m.prev3[q&wMask], lim, &m.next, 1, f) ||
		walkFrom(m.win, q, m.off, m.next[q&wMask], lim, &m.next, maxRankWalk, f)
}
