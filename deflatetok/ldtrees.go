package deflatetok

import "sort"

// The dynamic block header libdeflate writes for a block's symbol
// frequencies, written from the published description of its Huffman
// code construction: the used symbols sorted by frequency (then symbol),
// the tree built by the two-queue method (a pair of leaves first on a
// tie), over-deep nodes moved up to the deepest level with room, the
// lowest frequencies given the longest codes; the literal/length and
// distance lengths trimmed of trailing zeros, then run-length coded as
// one sequence; the code-length code sent up to its last used entry in
// the RFC 1951 order.

const (
	// ldMaxLitLen is the longest literal/length code libdeflate builds
	// (one less than RFC 1951 allows).
	ldMaxLitLen  = 14
	ldMaxDistLen = 15
	ldMaxCLLen   = 7
)

// ldCode builds libdeflate's code lengths (at most maxLen) for freq into
// lens, using scratch for the sort.
func ldCode(freq []int, lens []uint8, maxLen int, scratch *[]int) {
	clear(lens)
	syms := (*scratch)[:0]
	for s, f := range freq {
		if f > 0 {
			syms = append(syms, s)
		}
	}
	*scratch = syms
	if len(syms) == 0 {
		return // (a block without matches: one distance length, 0)
	}
	if len(syms) == 1 {
		// One code of two lengths of 1: symbol 0 and the used one (or 1).
		lens[0] = 1
		if len(syms) == 1 && syms[0] != 0 {
			lens[syms[0]] = 1
		} else {
			lens[1] = 1
		}
		return
	}
	sort.SliceStable(syms, func(i, j int) bool { return freq[syms[i]] < freq[syms[j]] })
	n := len(syms)
	// Internal nodes in the order made: their frequency and parent.
	var nodeFreq, parent [2 * lCodes]int
	i, b, e := 0, 0, 0
	take := func(k int) { parent[k] = e }
	for e < n-1 {
		var f int
		switch {
		case i+1 < n && (b == e || freq[syms[i+1]] <= nodeFreq[b]):
			f = freq[syms[i]] + freq[syms[i+1]]
			i += 2
		case b+2 <= e && (i >= n || nodeFreq[b+1] < freq[syms[i]]):
			f = nodeFreq[b] + nodeFreq[b+1]
			take(b)
			take(b + 1)
			b += 2
		default:
			f = freq[syms[i]] + nodeFreq[b]
			take(b)
			i++
			b++
		}
		nodeFreq[e] = f
		e++
	}
	// Depths from the root down; a node too deep takes the place of a
	// leaf at the deepest level that has one.
	var count [16]int
	var depth [2 * lCodes]int
	count[1] = 2
	for k := n - 3; k >= 0; k-- {
		d := depth[parent[k]] + 1
		depth[k] = d
		if d >= maxLen {
			d = maxLen - 1
			for count[d] == 0 {
				d--
			}
		}
		count[d]--
		count[d+1] += 2
	}
	k := 0
	for l := maxLen; l >= 1; l-- {
		for c := count[l]; c > 0; c-- {
			lens[syms[k]] = uint8(l)
			k++
		}
	}
}

// ldPredictHeader is the dynamic header (in the token form's layout)
// libdeflate writes for these frequencies, appended to dst.
func ldPredictHeader(dst []byte, scratch *[]int, litFreq *[lCodes]int, distFreq *[dCodes]int) []byte {
	var all [lCodes + dCodes]uint8
	ldCode(litFreq[:], all[:lCodes], ldMaxLitLen, scratch)
	var dl [dCodes]uint8
	ldCode(distFreq[:], dl[:], ldMaxDistLen, scratch)
	nl := lCodes
	for nl > 257 && all[nl-1] == 0 {
		nl--
	}
	nd := dCodes
	for nd > 1 && dl[nd-1] == 0 {
		nd--
	}
	lens := append(all[:nl], dl[:nd]...)
	var clFreq [blCodes]int
	ldRuns(lens, func(sym, rep int) { clFreq[sym]++ })
	var cl [blCodes]uint8
	ldCode(clFreq[:], cl[:], ldMaxCLLen, scratch)
	ncl := blCodes
	for ncl > 4 && cl[clOrder[ncl-1]] == 0 {
		ncl--
	}
	dst = append(dst, byte(nl-257), byte(nd-1), byte(ncl-4))
	for i := 0; i < ncl; i++ {
		dst = append(dst, cl[clOrder[i]])
	}
	ldRuns(lens, func(sym, rep int) {
		dst = append(dst, byte(sym))
		if sym >= 16 {
			dst = append(dst, byte(rep))
		}
	})
	return dst
}

// ldRuns walks code lengths as libdeflate run-length codes them: zeros
// by 18 (11–138 at a time) then 17 (3–10), a run of four or more of
// another length as the length then 16s (3–6 each), the rest as they are.
func ldRuns(lens []uint8, emit func(sym, rep int)) {
	for s := 0; s < len(lens); {
		l := lens[s]
		e := s + 1
		for e < len(lens) && lens[e] == l {
			e++
		}
		if l == 0 {
			for e-s >= 11 {
				r := min(e-s, 138)
				emit(18, r)
				s += r
			}
			if e-s >= 3 {
				r := min(e-s, 10)
				emit(17, r)
				s += r
			}
		} else if e-s >= 4 {
			emit(int(l), 0)
			s++
			for e-s >= 3 {
				r := min(e-s, 6)
				emit(16, r)
				s += r
			}
		}
		for ; s < e; s++ {
			emit(int(l), 0)
		}
	}
}
