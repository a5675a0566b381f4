package tarpatch

import (
	"slices"
)

// Pairing by content. A file whose old version moved (a renamed file, a
// library whose soname changed) or whose path now holds a different
// program (a binary replaced by another) is best diffed against the
// source file that shares the most content with it, not against the one
// at its path. Each source file of at least sketchMin bytes gets a sketch:
// the sketchK smallest fingerprints of its content-defined anchors
// (positions where a rolling hash of the last sketchSpan bytes hits a
// pattern, about one per anchorEvery bytes), kept whatever the file's
// size, so memory stays bounded by the number of files (and by
// sketchMaxEntries in all). A new file's sketch is matched against them;
// the candidate sharing the most fingerprints wins over the path match
// when it shares clearly more (see (*index).pick). Only the encoder
// computes sketches: the patch names its dictionary ranges as before, so
// the format does not change.

const (
	// sketchMin is the smallest file that is sketched: below it, the
	// path match is as good a guess and the sketch too sparse.
	sketchMin = 64 << 10
	// sketchK is how many fingerprints a sketch keeps.
	sketchK = 48
	// anchorBits sets the anchor rate: one position in 2^anchorBits.
	anchorBits = 9
	// sketchMaxEntries bounds the fingerprints kept for all sources (24
	// bytes each, with the per-file copy).
	sketchMaxEntries = 1 << 20
)

// gear is the rolling hash's byte table: fixed pseudo-random values
// (splitmix64 from a constant seed), so sketches are deterministic.
var gear = func() (g [256]uint64) {
	x := uint64(0x6469666661682d73) // "diffah-s"
	for i := range g {
		x += 0x9E3779B97F4A7C15
		z := x
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		g[i] = z ^ z>>31
	}
	return g
}()

// sketcher accumulates the anchors of a stream of bytes. With the hash
// shifted two bits per byte, a byte's contribution leaves the 64-bit
// state after 32 bytes: an anchor depends on the last 32 bytes only, so
// shifted copies of a region anchor at the same content.
type sketcher struct {
	h   uint64
	fps []uint64
}

func (s *sketcher) Write(p []byte) (int, error) {
	h := s.h
	for _, b := range p {
		h = h<<2 + gear[b]
		if h>>(64-anchorBits) == 0 {
			// Mixed, so that the smallest fingerprints are a fair sample
			// of the anchors rather than those with small hashes.
			s.fps = append(s.fps, h*0x9E3779B185EBCA87^h>>29)
			if len(s.fps) == 8*sketchK {
				// Only the smallest are kept: memory stays bounded
				// whatever the file's size.
				s.fps = s.sketch()
			}
		}
	}
	s.h = h
	return len(p), nil
}

// sketch returns the sketchK smallest distinct fingerprints, sorted.
func (s *sketcher) sketch() []uint64 {
	slices.Sort(s.fps)
	fps := slices.Compact(s.fps)
	if len(fps) > sketchK {
		fps = fps[:sketchK]
	}
	return append([]uint64(nil), fps...)
}

func sketchOf(b []byte) []uint64 {
	var s sketcher
	s.Write(b)
	return s.sketch()
}

// fpEntry says that a source file's sketch holds fp.
type fpEntry struct {
	fp   uint64
	file int32
}

// sketchIndex maps fingerprints to the source files whose sketches hold
// them.
type sketchIndex struct {
	files   []loc
	sketch  [][]uint64
	byLoc   map[[2]int64]int32
	entries []fpEntry
	sorted  bool
}

func (x *sketchIndex) add(l loc, sk []uint64) {
	if len(sk) == 0 || len(x.entries)+len(sk) > sketchMaxEntries {
		return
	}
	if x.byLoc == nil {
		x.byLoc = map[[2]int64]int32{}
	}
	if _, ok := x.byLoc[[2]int64{int64(l.src), l.off}]; ok {
		return
	}
	id := int32(len(x.files))
	x.files = append(x.files, l)
	x.sketch = append(x.sketch, sk)
	x.byLoc[[2]int64{int64(l.src), l.off}] = id
	for _, fp := range sk {
		x.entries = append(x.entries, fpEntry{fp, id})
	}
	x.sorted = false
}

func (x *sketchIndex) finish() {
	slices.SortFunc(x.entries, func(a, b fpEntry) int {
		if a.fp != b.fp {
			if a.fp < b.fp {
				return -1
			}
			return 1
		}
		return int(a.file - b.file)
	})
	x.sorted = true
}

// shared counts the fingerprints two sorted sketches have in common.
func shared(a, b []uint64) int {
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			n++
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return n
}

// best returns the source file sharing the most fingerprints with sk
// (the first such file in source order on a tie) and how many it shares.
func (x *sketchIndex) best(sk []uint64) (loc, int) {
	if !x.sorted || len(sk) == 0 {
		return loc{}, 0
	}
	counts := map[int32]int{}
	for _, fp := range sk {
		i, _ := slices.BinarySearchFunc(x.entries, fp, func(e fpEntry, fp uint64) int {
			if e.fp < fp {
				return -1
			}
			if e.fp > fp {
				return 1
			}
			return 0
		})
		for ; i < len(x.entries) && x.entries[i].fp == fp; i++ {
			counts[x.entries[i].file]++
		}
	}
	bestID, bestN := int32(-1), 0
	for id, n := range counts {
		if n > bestN || n == bestN && id < bestID {
			bestID, bestN = id, n
		}
	}
	if bestID < 0 {
		return loc{}, 0
	}
	return x.files[bestID], bestN
}

// score is how many fingerprints sk shares with the sketch of the source
// file at l (0 when that file has none).
func (x *sketchIndex) score(l loc, sk []uint64) int {
	id, ok := x.byLoc[[2]int64{int64(l.src), l.off}]
	if !ok {
		return 0
	}
	return shared(x.sketch[id], sk)
}

// pick chooses the old version of a new file: the path match (see
// match), unless a source file shares clearly more content with the new
// one (data is the file's content, or its first chunk). "Clearly" is
// twice the path match's shared fingerprints and pairMinShared more: a
// rebuilt file shares few 32-byte windows with its old version, and a
// mere lookalike (another program linked against the same runtime) must
// not displace it.
func (ix *index) pick(name string, size int64, data []byte) (loc, bool) {
	old, ok := ix.match(name, size)
	if !pairEnabled || size < sketchMin || ix.sketches == nil || len(ix.sketches.files) == 0 {
		return old, ok
	}
	sk := sketchOf(data)
	cand, n := ix.sketches.best(sk)
	if n < pairMinShared {
		return old, ok
	}
	if !ok {
		return cand, true
	}
	if cand.src == old.src && cand.off == old.off {
		return old, true
	}
	if p := ix.sketches.score(old, sk); n >= 2*p+pairMinShared {
		return cand, true
	}
	return old, true
}

// pairEnabled lets a measurement switch pairing by content off.
var pairEnabled = true

// pairMinShared is the fewest shared fingerprints (of sketchK) that make
// a content match.
const pairMinShared = 4
