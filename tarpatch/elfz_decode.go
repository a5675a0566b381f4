package tarpatch

import "fmt"

// Bound of an XADIFF op's piece lists.
const maxPieces = 4096

// xadiff decodes an XADIFF op (see elfz.go; the op byte already read).
// The expanded dictionary and output are each at most maxExpand bytes;
// every offset and length is checked against what is left before use.
func (d *decoder) xadiff() error {
	dict, outLen, err := d.v2Head(opXADiff, "xadiff")
	if err != nil {
		return err
	}
	// The dictionary's zlib streams, inflated in place.
	nd, err := d.uvarint("xadiff dictionary streams", maxPieces)
	if err != nil {
		return err
	}
	var exp []byte
	last := uint64(0)
	for range nd {
		off, err := d.uvarint("xadiff dictionary stream offset", uint64(len(dict)))
		if err != nil {
			return err
		}
		clen, err := d.uvarint("xadiff dictionary stream length", uint64(len(dict))-off)
		if err != nil {
			return err
		}
		if off < last {
			return fmt.Errorf("xadiff: dictionary stream at %d overlaps the previous one (ends at %d)", off, last)
		}
		exp = append(exp, dict[last:off]...)
		content, ok := inflate(dict[off:off+clen], maxExpand-int64(len(exp)))
		if !ok {
			return fmt.Errorf("xadiff: dictionary stream at %d is not zlib or inflates past %d bytes", off, maxExpand)
		}
		exp = append(exp, content...)
		last = off + clen
	}
	if int64(len(exp))+int64(len(dict))-int64(last) > maxExpand {
		return fmt.Errorf("xadiff: expanded dictionary exceeds %d bytes", maxExpand)
	}
	if nd > 0 {
		dict = append(exp, dict[last:]...)
	}
	// The output's zlib streams.
	nn, err := d.uvarint("xadiff output streams", maxPieces)
	if err != nil {
		return err
	}
	pieces := make([]zpiece, 0, min(nn, 64))
	var end, grow uint64
	for range nn {
		var v [4]uint64
		for i, what := range []string{"offset", "length", "inflated length", "level"} {
			lim := []uint64{outLen, outLen, maxExpand, 9}[i]
			if v[i], err = d.uvarint("xadiff output stream "+what, lim); err != nil {
				return err
			}
		}
		if v[0] < end || v[1] > outLen-v[0] {
			return fmt.Errorf("xadiff: output stream %d+%d overlaps or passes the %d-byte output", v[0], v[1], outLen)
		}
		end = v[0] + v[1]
		grow += v[2]
		if grow > maxExpand {
			return fmt.Errorf("xadiff: output streams inflate past %d bytes", maxExpand)
		}
		pieces = append(pieces, zpiece{off: int64(v[0]), clen: int64(v[1]), ilen: int64(v[2]), level: int(v[3])})
	}
	expLen, err := d.uvarint("xadiff expanded length", maxExpand)
	if err != nil {
		return err
	}
	// The expanded output is the output with each stream replaced by its
	// content: its length follows from the pieces.
	want := outLen
	for _, p := range pieces {
		want = want - uint64(p.clen) + uint64(p.ilen)
	}
	if expLen != want {
		return fmt.Errorf("xadiff: expanded length %d, the streams make it %d", expLen, want)
	}
	// expLen is at most maxExpand (a fixed bound): room for it up front
	// saves regrowing.
	expOut := make([]byte, 0, expLen)
	collect := func(p []byte) error { expOut = append(expOut, p...); return nil }
	if err := d.adiffBody(dict, dict[max(0, len(dict)-xdictMax):], expLen, collect); err != nil {
		return err
	}
	// Deflate the streams again (on all cores: the expensive part) and
	// write.
	starts := make([]int64, len(pieces))
	var at, outAt int64 // in expOut, in the output
	for i, p := range pieces {
		at += p.off - outAt
		starts[i] = at
		at += p.ilen
		outAt = p.off + p.clen
	}
	zs := make([][]byte, len(pieces))
	each(len(pieces), func(i int) { zs[i] = deflate(expOut[starts[i]:starts[i]+pieces[i].ilen], pieces[i].level) })
	at, outAt = 0, 0
	for i, p := range pieces {
		raw := p.off - outAt
		if err := d.write(expOut[at : at+raw]); err != nil {
			return err
		}
		at += raw
		z := zs[i]
		zs[i] = nil
		if int64(len(z)) != p.clen {
			return fmt.Errorf("xadiff: stream at %d recompresses to %d bytes, not %d (a compress/zlib other than the encoder's?)", p.off, len(z), p.clen)
		}
		if err := d.write(z); err != nil {
			return err
		}
		at += p.ilen
		outAt = p.off + p.clen
	}
	return d.write(expOut[at:])
}
