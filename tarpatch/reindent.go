package tarpatch

import (
	"bytes"
)

// Re-indented dictionary ranges (format diffah-tar/3). Bundlers emit the
// same code at different depths: TypeScript's typescript.js holds the
// compiler of tsc.js and tsserver.js two spaces deeper, inside a
// namespace. Every line of the earlier file then differs from the later
// one in its first bytes, and copies break at each line. In format 3 a
// dictionary range carries a shift: the range's bytes with every line
// moved right by shift spaces (a space prepended to each non-empty line,
// shift times) or left (up to -shift leading spaces removed). The encoder
// measures the shift between a recent file and the new one (indentShift)
// and uses it when most lines agree; the decoder applies the same
// function to the same bytes. The dictionary need not be inverted, only
// rebuilt, so the transform may lose information.
//
//	range = uvarint(src) uvarint(off) uvarint(len) varint(shift)   (format 3)
//
// len counts the range's bytes before the shift; the dictionary's size
// after it is what MaxDict bounds.

// maxShift bounds a range's shift either way: a shifted range is at most
// (1+maxShift) times its length.
const maxShift = 16

// reindent appends b moved by shift spaces per line to dst. st carries
// the position from piece to piece, so a range can be shifted piece by
// piece: lineStart at the start of a range, -1 inside a line, and when
// shifting left, the count of leading spaces already removed from the
// current line. It returns the state after b.
func reindent(dst, b []byte, shift, st int) ([]byte, int) {
	for len(b) > 0 {
		if st >= 0 {
			switch {
			case shift > 0 && b[0] != '\n':
				for range shift {
					dst = append(dst, ' ')
				}
			case shift < 0:
				for st < -shift && len(b) > 0 && b[0] == ' ' {
					st++
					b = b[1:]
				}
				if len(b) == 0 {
					// The spaces may go on in the next piece.
					return dst, st
				}
			}
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(dst, b...), -1
		}
		dst = append(dst, b[:i+1]...)
		b = b[i+1:]
		st = lineStart
	}
	return dst, st
}

// lineStart is reindent's state at the start of a line.
const lineStart = 0

// reindented is reindent of a whole range.
func reindented(b []byte, shift int) []byte {
	if shift == 0 {
		return b
	}
	out, _ := reindent(make([]byte, 0, len(b)+len(b)/8), b, shift, lineStart)
	return out
}

// indentShift returns how far right the lines of nw sit relative to the
// same lines in old (negative: left), when at least half of the sampled
// lines of nw found in old agree on a nonzero shift; else 0.
func indentShift(old, nw []byte) int {
	const minLine, samples = 24, 2048
	// Indentation of each distinct trimmed line of old (first seen).
	indent := map[string]int{}
	forLines(old, func(ind int, rest []byte) bool {
		if len(rest) >= minLine {
			if _, ok := indent[string(rest)]; !ok {
				indent[string(rest)] = ind
			}
		}
		return true
	})
	if len(indent) == 0 {
		return 0
	}
	// Lines sampled evenly through nw: one long line every stride bytes.
	votes := map[int]int{}
	n, found := 0, 0
	stride := max(len(nw)/samples, 1)
	for at := 0; at < len(nw); at += stride {
		i := bytes.IndexByte(nw[at:], '\n')
		if i < 0 {
			break
		}
		forLines(nw[at+i+1:], func(ind int, rest []byte) bool {
			if len(rest) < minLine {
				return true
			}
			n++
			if oi, ok := indent[string(rest)]; ok {
				found++
				votes[ind-oi]++
			}
			return false
		})
	}
	best, bestN := 0, 0
	for s, c := range votes {
		if c > bestN || c == bestN && s < best {
			best, bestN = s, c
		}
	}
	if best == 0 || best > maxShift || best < -maxShift || bestN*2 < found || found*4 < n {
		return 0
	}
	return best
}

// forLines calls f with each line's count of leading spaces and the rest
// of the line (without its newline), until f returns false.
func forLines(b []byte, f func(indent int, rest []byte) bool) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k := 0
		for k < len(line) && line[k] == ' ' {
			k++
		}
		if !f(k, line[k:]) {
			return
		}
	}
}
