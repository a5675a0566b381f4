package tarpatch

import (
	"encoding/binary"
)

// The ADIFF encoding (format diffah-tar/2) is bsdiff's: the new chunk is
// cut into entries, each an approximate copy from the dictionary — the
// bytewise difference new-old, mostly zero on rebuilt machine code where
// only moved addresses change — followed by extra bytes with no
// counterpart. Three streams, each one zstd frame:
//
//   - ctrl: varint(start) then per entry uvarint(diffLen) uvarint(extraLen)
//     varint(seek); the dictionary position starts at start and after an
//     entry moves by diffLen+seek. Every entry produces at least one byte.
//   - diff: diffLen bytes per entry, added bytewise (mod 256) to the
//     dictionary bytes at the position;
//   - extra: extraLen bytes per entry, verbatim; compressed against the
//     dictionary like MATCH's literals.
//
//	ADIFF = 0x06 ranges uvarint(outLen) section(ctrl) section(diff) section(extra)
//
// Where bsdiff finds exact matches with a suffix array, the encoder looks
// them up in a hash index of the dictionary (every position, 8-byte keys,
// one slot per bucket) and prefers continuing the current alignment, which
// keeps memory at a fixed table plus the streams; the scoring that turns
// exact matches into approximate ones (bsdiff's "2*matches - length"
// extension forwards and backwards, switching alignment only when the new
// match beats the old by adiffSlack bytes) is bsdiff's.

const (
	opADiff = 6
	// adiffKey is the length of the hashed keys.
	adiffKey = 8
	// adiffSlack is how many bytes a new alignment must beat the current
	// one by (bsdiff's 8).
	adiffSlack = 8
	adiffBits  = 22
	// adiffMaxLen caps one exact match's measured length.
	adiffMaxLen = 1 << 12
)

func adiffHash(b []byte, bits int) uint32 {
	return uint32(binary.LittleEndian.Uint64(b) * 0x9E3779B185EBCA87 >> (64 - bits))
}

// adiffEnabled lets a measurement switch ADIFF off to compare.
var adiffEnabled = true

// adiffEntry is one ctrl entry.
type adiffEntry struct {
	diff, extra int
	seek        int64
}

// adiffStreams computes the bsdiff streams of nw against old.
func adiffStreams(old, nw []byte) (ctrl, diff, extra []byte) {
	bits := adiffBits
	for bits > 10 && 1<<(bits-1) >= len(old) {
		bits--
	}
	table := make([]int32, 1<<bits)
	for i := range table {
		table[i] = -1
	}
	for p := 0; p+adiffKey <= len(old); p++ {
		table[adiffHash(old[p:], bits)] = int32(p)
	}
	// Match lengths are capped: a long approximate region otherwise
	// costs a full-length compare per byte.
	matchLen := func(o, n int) int {
		l := 0
		for l < adiffMaxLen && o+l < len(old) && n+l < len(nw) && old[o+l] == nw[n+l] {
			l++
		}
		return l
	}
	// search returns the longest exact match of nw[scan:] it finds: at the
	// current alignment or at the hash index's candidate.
	search := func(scan, lastOffset int) (pos, n int) {
		pos, n = -1, 0
		if o := scan + lastOffset; o >= 0 && o < len(old) {
			pos, n = o, matchLen(o, scan)
		}
		if scan+adiffKey <= len(nw) {
			if c := int(table[adiffHash(nw[scan:], bits)]); c >= 0 && c != pos {
				if l := matchLen(c, scan); l > n {
					pos, n = c, l
				}
			}
		}
		return pos, n
	}

	diff = make([]byte, 0, len(nw))
	var entries []adiffEntry
	start := int64(0)
	startSet := false
	add := func(e adiffEntry, from int64) {
		// from is the dictionary position this entry's diff starts at.
		if !startSet {
			start, startSet = from, true
		}
		if e.diff == 0 && e.extra == 0 {
			// An empty entry only moves the position: fold its move into
			// the previous entry (or the start).
			if len(entries) == 0 {
				start += e.seek
			} else {
				entries[len(entries)-1].seek += e.seek
			}
			return
		}
		entries = append(entries, e)
	}

	scan, n, lastScan, lastPos, lastOffset := 0, 0, 0, 0, 0
	pos := 0
	for scan < len(nw) {
		oldScore := 0
		scan += n
		scsc := scan
		for ; scan < len(nw); scan++ {
			pos, n = search(scan, lastOffset)
			for ; scsc < scan+n; scsc++ {
				if o := scsc + lastOffset; o >= 0 && o < len(old) && old[o] == nw[scsc] {
					oldScore++
				}
			}
			if (n == oldScore && n != 0) || n > oldScore+adiffSlack {
				break
			}
			if o := scan + lastOffset; o >= 0 && o < len(old) && old[o] == nw[scan] {
				oldScore--
			}
		}
		if n == oldScore && scan != len(nw) {
			continue
		}
		// Extend the previous alignment forwards from lastScan...
		s, sf, lenf := 0, 0, 0
		for i := 0; lastScan+i < scan && lastPos+i < len(old); {
			if old[lastPos+i] == nw[lastScan+i] {
				s++
			}
			i++
			if s*2-i > sf*2-lenf {
				sf, lenf = s, i
			}
		}
		// ...and the new one backwards from scan.
		lenb := 0
		if scan < len(nw) && pos >= 0 {
			s, sb := 0, 0
			for i := 1; scan >= lastScan+i && pos >= i; i++ {
				if old[pos-i] == nw[scan-i] {
					s++
				}
				if s*2-i > sb*2-lenb {
					sb, lenb = s, i
				}
			}
		}
		if lastScan+lenf > scan-lenb {
			overlap := (lastScan + lenf) - (scan - lenb)
			s, ss, lens := 0, 0, 0
			for i := 0; i < overlap; i++ {
				if nw[lastScan+lenf-overlap+i] == old[lastPos+lenf-overlap+i] {
					s++
				}
				if nw[scan-lenb+i] == old[pos-lenb+i] {
					s--
				}
				if s > ss {
					ss, lens = s, i+1
				}
			}
			lenf += lens - overlap
			lenb -= lens
		}
		for i := 0; i < lenf; i++ {
			diff = append(diff, nw[lastScan+i]-old[lastPos+i])
		}
		extraLen := (scan - lenb) - (lastScan + lenf)
		extra = append(extra, nw[lastScan+lenf:scan-lenb]...)
		next := pos - lenb
		if scan >= len(nw) || pos < 0 {
			next = lastPos + lenf
		}
		add(adiffEntry{diff: lenf, extra: extraLen, seek: int64(next - (lastPos + lenf))}, int64(lastPos))
		lastScan, lastPos, lastOffset = scan-lenb, next, next-(scan-lenb)
	}
	ctrl = binary.AppendVarint(ctrl, start)
	for _, e := range entries {
		ctrl = binary.AppendUvarint(ctrl, uint64(e.diff))
		ctrl = binary.AppendUvarint(ctrl, uint64(e.extra))
		ctrl = binary.AppendVarint(ctrl, e.seek)
	}
	return ctrl, diff, extra
}

// applyADiff rebuilds the output from the streams (the encoder's own
// check and the reference for the streaming decoder's tests).
func applyADiff(old, ctrl, diff, extra []byte) ([]byte, bool) {
	start, k := binary.Varint(ctrl)
	if k <= 0 {
		return nil, false
	}
	ctrl = ctrl[k:]
	pos := start
	var out []byte
	for len(ctrl) > 0 {
		dl, k1 := binary.Uvarint(ctrl)
		if k1 <= 0 {
			return nil, false
		}
		el, k2 := binary.Uvarint(ctrl[k1:])
		if k2 <= 0 {
			return nil, false
		}
		sk, k3 := binary.Varint(ctrl[k1+k2:])
		if k3 <= 0 {
			return nil, false
		}
		ctrl = ctrl[k1+k2+k3:]
		if dl > uint64(len(diff)) || el > uint64(len(extra)) || pos < 0 || pos+int64(dl) > int64(len(old)) {
			return nil, false
		}
		for i := range int(dl) {
			out = append(out, old[pos+int64(i)]+diff[i])
		}
		diff = diff[dl:]
		out = append(out, extra[:el]...)
		extra = extra[el:]
		pos += int64(dl) + sk
	}
	return out, len(diff) == 0 && len(extra) == 0
}

// adiffOp encodes data against the dictionary as ADIFF.
func adiffOp(ranges []loc, dict, data []byte, enc *encoders) ([]byte, error) {
	ctrl, diff, extra := adiffStreams(dict, data)
	b := enc.appendRanges([]byte{opADiff}, ranges)
	b = binary.AppendUvarint(b, uint64(len(data)))
	for _, sec := range [][]byte{ctrl, diff} {
		z := enc.plain.EncodeAll(sec, nil)
		b = binary.AppendUvarint(b, uint64(len(z)))
		b = append(b, z...)
	}
	z, err := enc.withDict(dict, extra)
	if err != nil {
		return nil, err
	}
	b = binary.AppendUvarint(b, uint64(len(z)))
	return append(b, z...), nil
}
