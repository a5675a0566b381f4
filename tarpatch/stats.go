package tarpatch

import (
	"sort"
	"strings"

	"github.com/diffah/diffah/sidecar"
)

// FileCost is what one regular file of the new tar costs in a patch: the
// answer to "which files make this patch big?". It is the sidecar's
// record, so what pack writes is what Encode measured. Encode sets
// OldPath to the source file's path (Path when the same) and Encoding to
// copy, lit, delta, match, matchin, adiff or xadiff (several joined with
// "+" for a file cut into chunks), or whole for the whole form, where an
// unchanged file stays copy. Estimated says Bytes is a proportional share
// of bytes that are not separable per file — the patch's shared zstd
// stream compresses the literals and small ops of every file together,
// and the whole form the whole tar as one — rather than the size of the
// file's own frames (DELTA, MATCH, ADIFF, XADIFF payloads), exact up to a
// few bytes of op framing.
type FileCost = sidecar.FileCost

// Costs attributes every byte of a patch to the files of its new tar.
// The Bytes of Files and Meta add up to the patch's size.
type Costs struct {
	// Files lists the regular files with content, in tar order.
	Files []FileCost
	// Meta is what the rest costs: tar headers, entries without content
	// (directories, links, empty files), padding, the end-of-archive
	// blocks, the patch's magic and its END op; MetaEstimated as
	// FileCost.Estimated.
	Meta          int64
	MetaEstimated bool
	// Whole is set when the patch is the whole form: one zstd frame of
	// the whole tar, where no file's bytes can be told apart. Each share
	// is then the file-by-file encoding's, scaled to the whole patch.
	Whole bool
}

// Costliest returns the files sorted by Bytes, largest first (ties by
// path), without changing c.
func (c *Costs) Costliest() []FileCost {
	out := append([]FileCost(nil), c.Files...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// costAcc gathers, while encode's writer drains its tasks in order, the op
// bytes each file contributes to the op stream.
type costAcc struct {
	files []*fileAcc
	// meta is the op bytes that belong to no file (all go through the
	// shared stream).
	meta int64
}

type fileAcc struct {
	cost FileCost
	// plain are op bytes compressed only by the shared stream (LIT,
	// MATCHIN, COPY); framed are op bytes that carry their own zstd
	// frames, which the shared stream cannot shrink.
	plain, framed int64
	encs          []string
}

// file starts the record of the next file.
func (a *costAcc) file(name string, size int64, old loc, hasOld bool) *fileAcc {
	f := &fileAcc{cost: FileCost{Path: name, Size: size}}
	if hasOld {
		f.cost.OldPath, f.cost.OldSize = old.name, old.size
	}
	a.files = append(a.files, f)
	return f
}

// opNames names the ops that carry file content.
var opNames = map[byte]string{opLit: "lit", opCopy: "copy", opDelta: "delta", opMatch: "match", opMatchIn: "matchin", opADiff: "adiff", opXADiff: "xadiff"}

// op records n op bytes of the given op for f (nil: for no file).
func (a *costAcc) op(f *fileAcc, op byte, n int64) {
	if a == nil {
		return
	}
	if f == nil {
		a.meta += n
		return
	}
	switch op {
	case opLit, opMatchIn, opCopy:
		f.plain += n
	default:
		f.framed += n
	}
	name := opNames[op]
	for _, e := range f.encs {
		if e == name {
			return
		}
	}
	f.encs = append(f.encs, name)
}

// copied records a COPY of a file's content from a source file; its op
// bytes are recorded when the COPY is written (merged COPYs cost one op).
func (a *costAcc) copied(f *fileAcc, from loc) {
	if a == nil || f == nil {
		return
	}
	if f.cost.OldPath == "" || f.cost.OldPath != from.name {
		f.cost.OldPath, f.cost.OldSize = from.name, from.size
	}
	a.op(f, opCopy, 0)
}

// finish turns op bytes into patch bytes. streamBytes is the size of the
// compressed op stream, fixed the size of what precedes it (the magic).
// Framed bytes pass the shared stream about as they are; the rest of the
// stream is shared among plain bytes in proportion. When the stream came
// out smaller than the framed bytes alone, everything is scaled.
func (a *costAcc) finish(fixed, streamBytes int64) *Costs {
	var framed, plain int64
	for _, f := range a.files {
		framed += f.framed
		plain += f.plain
	}
	plain += a.meta
	kFramed, kPlain := 1.0, 0.0
	switch {
	case streamBytes >= framed && plain > 0:
		kPlain = float64(streamBytes-framed) / float64(plain)
	case streamBytes < framed:
		kFramed = float64(streamBytes) / float64(framed)
	}
	c := &Costs{Files: make([]FileCost, len(a.files))}
	var sum int64
	for i, f := range a.files {
		fc := f.cost
		fc.Encoding = strings.Join(f.encs, "+")
		fc.Bytes = int64(float64(f.framed)*kFramed + float64(f.plain)*kPlain)
		fc.Estimated = f.plain > 0 || kFramed != 1
		sum += fc.Bytes
		c.Files[i] = fc
	}
	// Shares are rounded down; what that leaves over (a few bytes) is the
	// rest's, so the shares add up to the patch exactly.
	c.Meta = fixed + streamBytes - sum
	c.MetaEstimated = true
	return c
}

// scaleWhole turns the file-by-file costs c into those of the whole form
// of total bytes: the same shares, scaled, all estimated.
func (c *Costs) scaleWhole(total int64) *Costs {
	var all int64
	for _, f := range c.Files {
		all += f.Bytes
	}
	all += c.Meta
	k := 0.0
	if all > 0 {
		k = float64(total) / float64(all)
	}
	w := &Costs{Files: make([]FileCost, len(c.Files)), Whole: true, MetaEstimated: true}
	var sum int64
	for i, f := range c.Files {
		// An unchanged file stays "copy": the frame matches it whole
		// against the sources, as a COPY would.
		if f.Encoding != "copy" {
			f.Encoding = "whole"
		}
		f.Estimated = true
		f.Bytes = int64(float64(f.Bytes) * k)
		sum += f.Bytes
		w.Files[i] = f
	}
	w.Meta = total - sum
	return w
}
