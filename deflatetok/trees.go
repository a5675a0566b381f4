package deflatetok

// The dynamic block header the zlib/gzip family writes for a block's
// symbol frequencies: Huffman code lengths from a heap of subtrees (ties
// broken by subtree depth), lengths over the limit fixed by moving
// leaves down, the lengths run-length coded per tree (literal/length
// tree, then distance tree, each on its own), and the code-length code
// sent up to its last used entry in the RFC 1951 order. Written from
// RFC 1951 3.2.7 and the published description of that encoder; the
// model form records a header only where this prediction is wrong.

const (
	lCodes   = 286
	dCodes   = 30
	blCodes  = 19
	heapSize = 2*lCodes + 1
)

// treeBuilder holds the scratch space of one code construction.
type treeBuilder struct {
	freq  [heapSize]int
	dad   [heapSize]int
	depth [heapSize]uint8
	lens  [heapSize]uint8
	heap  [heapSize]int
	hlen  int
	hmax  int
}

func (b *treeBuilder) smaller(n, m int) bool {
	return b.freq[n] < b.freq[m] || b.freq[n] == b.freq[m] && b.depth[n] <= b.depth[m]
}

func (b *treeBuilder) down(k int) {
	v := b.heap[k]
	j := k << 1
	for j <= b.hlen {
		if j < b.hlen && b.smaller(b.heap[j+1], b.heap[j]) {
			j++
		}
		if b.smaller(v, b.heap[j]) {
			break
		}
		b.heap[k] = b.heap[j]
		k = j
		j <<= 1
	}
	b.heap[k] = v
}

// build sets lens[0:len(freq)] to the code lengths (at most maxLen) for
// freq and returns the largest symbol with a code.
func (b *treeBuilder) build(freq []int, maxLen int) ([]uint8, int) {
	elems := len(freq)
	b.hlen, b.hmax = 0, heapSize
	maxCode := -1
	for n := 0; n < elems; n++ {
		b.freq[n] = freq[n]
		b.lens[n] = 0
		if freq[n] != 0 {
			b.hlen++
			b.heap[b.hlen] = n
			maxCode = n
			b.depth[n] = 0
		}
	}
	// At least two codes.
	for b.hlen < 2 {
		node := 0
		if maxCode < 2 {
			maxCode++
			node = maxCode
		}
		b.hlen++
		b.heap[b.hlen] = node
		b.freq[node] = 1
		b.depth[node] = 0
	}
	for n := b.hlen / 2; n >= 1; n-- {
		b.down(n)
	}
	node := elems
	for {
		n := b.heap[1]
		b.heap[1] = b.heap[b.hlen]
		b.hlen--
		b.down(1)
		m := b.heap[1]
		b.hmax--
		b.heap[b.hmax] = n
		b.hmax--
		b.heap[b.hmax] = m
		b.freq[node] = b.freq[n] + b.freq[m]
		d := b.depth[n]
		if b.depth[m] > d {
			d = b.depth[m]
		}
		b.depth[node] = d + 1
		b.dad[n], b.dad[m] = node, node
		b.heap[1] = node
		node++
		b.down(1)
		if b.hlen < 2 {
			break
		}
	}
	b.hmax--
	b.heap[b.hmax] = b.heap[1]
	b.bitLengths(maxCode, maxLen)
	return b.lens[:elems], maxCode
}

// bitLengths gives every leaf its depth, capped at maxLen, and repairs
// the counts of an over-deep tree.
func (b *treeBuilder) bitLengths(maxCode, maxLen int) {
	var count [16]int
	b.lens[b.heap[b.hmax]] = 0
	overflow := 0
	for h := b.hmax + 1; h < heapSize; h++ {
		n := b.heap[h]
		bits := int(b.lens[b.dad[n]]) + 1
		if bits > maxLen {
			bits = maxLen
			overflow++
		}
		b.lens[n] = uint8(bits)
		if n > maxCode {
			continue
		}
		count[bits]++
	}
	if overflow == 0 {
		return
	}
	for overflow > 0 {
		bits := maxLen - 1
		for count[bits] == 0 {
			bits--
		}
		count[bits]--
		count[bits+1] += 2
		count[maxLen]--
		overflow -= 2
	}
	h := heapSize
	for bits := maxLen; bits != 0; bits-- {
		n := count[bits]
		for n != 0 {
			h--
			m := b.heap[h]
			if m > maxCode {
				continue
			}
			b.lens[m] = uint8(bits)
			n--
		}
	}
}

// runs walks a tree's lengths as the header codes them, calling emit for
// each code-length symbol and its repeat count.
func runs(lens []uint8, maxCode int, emit func(sym, rep int)) {
	prev, count := -1, 0
	next := int(lens[0])
	maxCount, minCount := 7, 4
	if next == 0 {
		maxCount, minCount = 138, 3
	}
	for n := 0; n <= maxCode; n++ {
		cur := next
		next = 0xffff
		if n+1 <= maxCode {
			next = int(lens[n+1])
		}
		count++
		if count < maxCount && cur == next {
			continue
		}
		switch {
		case count < minCount:
			for ; count > 0; count-- {
				emit(cur, 0)
			}
		case cur != 0:
			if cur != prev {
				emit(cur, 0)
				count--
			}
			emit(16, count)
		case count <= 10:
			emit(17, count)
		default:
			emit(18, count)
		}
		count, prev = 0, cur
		switch {
		case next == 0:
			maxCount, minCount = 138, 3
		case cur == next:
			maxCount, minCount = 6, 3
		default:
			maxCount, minCount = 7, 4
		}
	}
}

// predictHeader is the dynamic header (in the token form's layout) the
// zlib/gzip family writes for these frequencies, appended to dst.
func predictHeader(dst []byte, b *treeBuilder, litFreq *[lCodes]int, distFreq *[dCodes]int) []byte {
	var ll [lCodes]uint8
	var dl [dCodes]uint8
	l, lmax := b.build(litFreq[:], 15)
	copy(ll[:], l)
	d, dmax := b.build(distFreq[:], 15)
	copy(dl[:], d)
	var blFreq [blCodes]int
	count := func(sym, rep int) { blFreq[sym]++ }
	runs(ll[:], lmax, count)
	runs(dl[:], dmax, count)
	bl, _ := b.build(blFreq[:], 7)
	var bll [blCodes]uint8
	copy(bll[:], bl)
	maxIndex := blCodes - 1
	for ; maxIndex >= 3; maxIndex-- {
		if bll[clOrder[maxIndex]] != 0 {
			break
		}
	}
	dst = append(dst, byte(lmax+1-257), byte(dmax+1-1), byte(maxIndex+1-4))
	for i := 0; i <= maxIndex; i++ {
		dst = append(dst, bll[clOrder[i]])
	}
	put := func(sym, rep int) {
		dst = append(dst, byte(sym))
		if sym >= 16 {
			dst = append(dst, byte(rep))
		}
	}
	runs(ll[:], lmax, put)
	runs(dl[:], dmax, put)
	return dst
}
