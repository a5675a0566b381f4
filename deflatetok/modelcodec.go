package deflatetok

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
)

// The model form of a gzip blob (codec diffah-deflate-model/2; /1 is
// still read): what,
// with the blob's content, rebuilds its token form — and so the blob —
// when the blob was made by a compressor of the zlib/gzip family or by
// libdeflate at levels 2–9. The
// matcher model (model.go; libdeflate.go) predicts every token, the header model
// (trees.go; ldtrees.go) every dynamic header; the form holds the parameters, the
// block structure, and only the tokens and headers the models got wrong.
//
//	modelForm = magic ("DFHMODL2" | "DFHMODL1") zstd-frame(body)
//	          | magic "DFHMODL3" zstd-frame(byte(family) body)
//	body    = byte(lazy) uvarint(good) uvarint(maxLazy) uvarint(nice) uvarint(chain)
//	          { 0x01 member } 0x00 uvarint(n) n*byte(tail)
//	member  = uvarint(hlen) hlen*byte(gzip header) { block } byte(pad) 8*byte(trailer)
//	block   = byte(bfinal | btype<<1 | inputEnds<<3 | header<<4) uvarint(len)
//	          stored:        byte(pad)                    (len ≤ 65535)
//	          fixed/dynamic: [dynamic header as in the token form, when header=1]
//	                         uvarint(count) count*correction
//	correction = uvarint(gap) uvarint(length) [uvarint(where) when length > 0]
//
// where is, in "DFHMODL2", rank<<1 — the match is the rank+1-th of the
// model's hash chain candidates at its position (nearest first, at most
// maxRankWalk of them) that match at least length bytes, so the
// distance costs a few bits, mostly none, where another encoder chose
// another of the candidates — or distance<<1 | 1 when the chain does not
// hold it; in "DFHMODL1" the distance.
//
// "DFHMODL3" is "DFHMODL2" for another family's matcher, named by the
// byte before the parameters: 1, libdeflate (lazy 0: its greedy levels,
// 1: lazy, 2: lazy2; good and maxLazy 0, nice its nice length, chain its search
// depth; a match is ranked among its 3-byte candidate then its 4-byte
// hash chain), whose dynamic headers are predicted by its own Huffman
// construction. The zlib family's forms stay "DFHMODL2", which older
// readers read; they refuse "DFHMODL3" by its magic.
//
// len is the content bytes the block covers. inputEnds says the
// compressor's input ended with the block (a member's last data, or a
// flush: the next data block starts a stream primed with the 32 KiB
// before it, as pigz writes). A correction replaces the gap+1-th token
// predicted after the previous one (length 0: a literal). A stored block's
// tokens are predicted and not corrected (they only move the model on).
var debugModel = os.Getenv("DIFFAH_MODEL_DEBUG") != ""

const (
	modelMagic   = "DFHMODL2"
	modelMagicV1 = "DFHMODL1"
	// modelMagicV3 is the ranked form of another family's matcher (a
	// family byte before the parameters); the zlib family's stays
	// "DFHMODL2", which older readers read.
	modelMagicV3 = "DFHMODL3"
)

// ErrNoModel says the blob's tokens do not fit the model (another
// encoder made it, or a structure the model form cannot hold).
var ErrNoModel = errors.New("the deflate model does not fit this stream")

const (
	flagInputEnds = 1 << 3
	flagHeader    = 1 << 4
	// maxBlockContent bounds the content of one block (and so the tokens
	// held at once): zlib's blocks cover at most 16383*258 bytes.
	maxBlockContent = 8 << 20
	// maxChain bounds the chain parameter (zlib's level 9 uses 4096).
	maxChain = 4096
)

// ModelStats says what a model form holds.
type ModelStats struct {
	Tokens, Corrections int64
	Blocks, Headers     int64 // blocks; dynamic headers recorded whole
}

// mblock is one block of the real stream, as the encoder holds it.
type mblock struct {
	h      byte
	start  int64
	n      int64
	pad    byte
	hdr    []byte
	toks   []token
	inEnds bool
}

// formTokens reads a block's tokens from the token form up to its end of
// block, appending them to toks; false when a match is not coded as the
// zlib family codes it (lengths and distances by their one canonical
// symbol).
func formTokens(r *bufio.Reader, toks []token) ([]token, int64, error) {
	var n int64
	for {
		t, err := r.ReadByte()
		if err != nil {
			return toks, n, corrupt("truncated")
		}
		switch t {
		case tokEOB:
			return toks, n, nil
		case tokLits:
			c, err := binary.ReadUvarint(r)
			if err != nil || c > maxLitRun {
				return toks, n, corrupt("bad literal run")
			}
			n += int64(c)
			for ; c > 0; c-- {
				toks = append(toks, 0)
			}
		case tokMatch:
			m, err := r.Peek(5)
			if err != nil {
				return toks, n, corrupt("truncated match")
			}
			ls, ds := int(m[0]), int(m[2])
			if ls > 28 || ds > 29 {
				return toks, n, corrupt("bad match")
			}
			l := int(lenBase[ls]) + int(m[1])
			d := int(distBase[ds]) + (int(m[3]) | int(m[4])<<8)
			r.Discard(5)
			if l > maxMatch || d > wSize || lenSym(l) != ls || distSym(d) != ds {
				return toks, n, fmt.Errorf("%w: a match not coded by its canonical symbols", ErrNoModel)
			}
			toks = append(toks, matchTok(l, d))
			n += int64(l)
		default:
			return toks, n, corrupt("unknown token 0x%02x", t)
		}
		if n > maxBlockContent {
			return toks, n, fmt.Errorf("%w: a block of over %d bytes of content", ErrNoModel, maxBlockContent)
		}
	}
}

// lenSym and distSym are the symbols (less 257 for lengths) of a match
// length and distance.
func lenSym(l int) int { return int(lenSymTab[l]) }

func distSym(d int) int { return int(distSymTab[d]) }

var (
	lenSymTab  [maxMatch + 1]uint8
	distSymTab [wSize + 1]uint8
)

func init() {
	for l := minMatch; l <= maxMatch; l++ {
		s := 0
		for s < 27 && int(lenBase[s+1]) <= l {
			s++
		}
		if l == maxMatch {
			s = 28
		}
		lenSymTab[l] = uint8(s)
	}
	for d := 1; d <= wSize; d++ {
		s := 0
		for s < 29 && int(distBase[s+1]) <= d {
			s++
		}
		distSymTab[d] = uint8(s)
	}
}

// readDynHeader reads a dynamic header in the token form's layout,
// checking it as Encode does, and returns its bytes.
func readDynHeader(r *bufio.Reader) ([]byte, error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, corrupt("truncated dynamic header")
	}
	hlit, hdist, hclen := int(h[0])+257, int(h[1])+1, int(h[2])+4
	if hlit > 286 || hdist > 30 || hclen > 19 {
		return nil, corrupt("dynamic header counts %d/%d/%d", hlit, hdist, hclen)
	}
	out := append([]byte(nil), h[:]...)
	var cll [19]uint8
	for i := 0; i < hclen; i++ {
		c, err := r.ReadByte()
		if err != nil || c > 7 {
			return nil, corrupt("bad code length code length")
		}
		cll[clOrder[i]] = c
		out = append(out, c)
	}
	var cl huffman
	if err := cl.build(cll[:]); err != nil {
		return nil, corrupt("%v", err)
	}
	total := hlit + hdist
	for i := 0; i < total; {
		sym, err := r.ReadByte()
		if err != nil || sym > 18 || cl.length[sym] == 0 {
			return nil, corrupt("bad code length symbol")
		}
		out = append(out, sym)
		if sym < 16 {
			i++
			continue
		}
		rep, err := r.ReadByte()
		if err != nil {
			return nil, corrupt("truncated")
		}
		lo, hi := 3, 6
		switch {
		case sym == 16 && i == 0:
			return nil, corrupt("bad repeat")
		case sym == 17:
			hi = 10
		case sym == 18:
			lo, hi = 11, 138
		}
		if int(rep) < lo || int(rep) > hi || i+int(rep) > total {
			return nil, corrupt("bad repeat")
		}
		out = append(out, rep)
		i += int(rep)
	}
	return out, nil
}

// modelRun is the state both directions share: the model, the content
// window and where the stream is.
type modelRun struct {
	m           matcher
	win         *window
	tb          treeBuilder
	ld          bool  // libdeflate's headers
	scratch     []int // (their sort)
	memberStart int64
	pos         int64
	restart     bool
	litFreq     [lCodes]int
	distFreq    [dCodes]int
}

func newModelRun(p Params, content io.Reader) *modelRun {
	w := &window{r: content, buf: make([]byte, 0, windowCap)}
	return &modelRun{m: newMatcher(p, w), win: w, ld: p.Family == FamilyLibdeflate}
}

// predictHeader is the dynamic header the family writes for the block's
// frequencies, appended to dst.
func (r *modelRun) predictHeader(dst []byte) []byte {
	if r.ld {
		return ldPredictHeader(dst, &r.scratch, &r.litFreq, &r.distFreq)
	}
	return predictHeader(dst, &r.tb, &r.litFreq, &r.distFreq)
}

func (r *modelRun) startMember() {
	r.memberStart = r.pos
	r.m.reset(r.pos, r.pos)
	r.restart = false
}

// startBlock prepares the model for a block of n content bytes.
func (r *modelRun) startBlock(n int64, inputEnds bool) {
	if r.restart && n > 0 {
		dict := r.pos - wSize
		if dict < r.memberStart {
			dict = r.memberStart
		}
		r.m.reset(dict, r.pos)
		r.restart = false
	}
	end := int64(noEnd)
	if inputEnds {
		end = r.pos + n
	}
	r.m.block(r.pos, end)
	clear(r.litFreq[:])
	clear(r.distFreq[:])
	r.litFreq[256] = 1
}

// endBlock moves past the block.
func (r *modelRun) endBlock(n int64, inputEnds, final bool) {
	r.pos += n
	if inputEnds && !final {
		r.restart = true
	}
}

// count adds token t at q to the block's frequencies.
func (r *modelRun) count(q int64, t token) {
	if t == 0 {
		r.litFreq[r.win.buf[q-r.win.base]]++
		return
	}
	r.litFreq[257+lenSym(t.length())]++
	r.distFreq[distSym(t.dist())]++
}

// skip moves the model over a stored block's content.
func (r *modelRun) skip(n int64) {
	end := r.pos + n
	for q := r.pos; q < end; {
		pred := r.m.predict(q)
		t := pred
		if int64(t.span()) > end-q {
			t = 0
		}
		r.m.step(q, t, pred)
		q += int64(t.span())
	}
}

// contentOK reports whether the window holds the content at q.
func (r *modelRun) contentOK(q int64) bool { return q < r.win.end() }

// EncodeModel writes the model form of a gzip blob, from its token form
// (Decode's output) and its content, with matcher parameters p. It
// returns ErrNoModel (wrapped) when the stream does not fit the model
// form, or when the form would exceed maxBody bytes.
func EncodeModel(ctx context.Context, w io.Writer, form, content io.Reader, p Params, maxBody int64) (ModelStats, error) {
	return encodeModelForm(ctx, w, form, content, p, maxBody, true)
}

// encodeModelForm writes the ranked form ("DFHMODL2"), or when ranked is
// false the first one (for tests: what older archives hold).
func encodeModelForm(ctx context.Context, w io.Writer, form, content io.Reader, p Params, maxBody int64, ranked bool) (ModelStats, error) {
	var st ModelStats
	m := modelMagic
	if !ranked {
		m = modelMagicV1
	}
	if p.Family != FamilyZlib {
		m = modelMagicV3
	}
	cw := &capWriter{w: w, left: maxBody}
	if _, err := io.WriteString(cw, m); err != nil {
		return st, fault.Wrap(fault.Env, err)
	}
	zw, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20))
	if err != nil {
		return st, fault.Wrap(fault.Internal, err)
	}
	over := func() error {
		zw.Close()
		return fmt.Errorf("%w: reconstruction data over %d bytes", ErrNoModel, maxBody)
	}
	bw := bufio.NewWriterSize(zw, 1<<16)
	if err := encodeModel(ctx, bw, bufio.NewReaderSize(form, 1<<20), content, p, &st, -1, ranked, func() bool { return cw.over }); err != nil {
		if cw.over {
			return st, over()
		}
		zw.Close()
		return st, err
	}
	if err := bw.Flush(); err != nil {
		if cw.over {
			return st, over()
		}
		zw.Close()
		return st, fault.Wrap(fault.Env, err)
	}
	if err := zw.Close(); err != nil {
		if cw.over {
			return st, fmt.Errorf("%w: reconstruction data over %d bytes", ErrNoModel, maxBody)
		}
		return st, fault.Wrap(fault.Env, err)
	}
	return st, nil
}

type capWriter struct {
	w    io.Writer
	left int64
	over bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		c.over = true
		return 0, ErrNoModel
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}

func putUvarint(w *bufio.Writer, v uint64) { appendUvarint(w, v) }

// errStop ends a trial run of encodeModel at its content limit.
var errStop = errors.New("stop")

// FitParams finds the level (an index in Levels) whose matcher best
// predicts the stream whose token form is form, on the stream's first
// blocks (prefix: the first bytes of its content, a MiB or so). Every
// zlib/gzip level and libdeflate level 2–9 is tried on the first
// fitProbe bytes; then the best of them (one of each family at least),
// in order, on the whole prefix, the first that mispredicts at most a
// fitClose share of its tokens and no header ending the search (so a
// stream of either family costs about two passes of the prefix, not
// seventeen). Ties go to the level nearest the family's default, 6,
// zlib's first. It
// returns the level and the share of tokens it mispredicted; an error
// wraps ErrNoModel when the stream does not fit the model form at all.
func FitParams(ctx context.Context, form io.ReaderAt, formSize int64, prefix []byte) (int, float64, error) {
	var st ModelStats
	trial := func(lvl int, n int) (int64, float64, error) {
		st = ModelStats{}
		w := bufio.NewWriter(io.Discard)
		err := encodeModel(ctx, w, bufio.NewReader(io.NewSectionReader(form, 0, formSize)), bytes.NewReader(prefix[:n]), Levels[lvl], &st, max(int64(n)-2*maxMatch, 0), false, nil)
		if err != nil && err != errStop {
			return 0, 0, err
		}
		score := st.Corrections + 8*st.Headers
		return score, float64(score) / float64(max(st.Tokens, 1)), nil
	}
	// Levels by distance from 6 (5 before 7: the tie order), zlib's
	// then libdeflate's.
	order := []int{6, 5, 7, 4, 8, 3, 9, 2, 1}
	for _, l := range []int{6, 5, 7, 4, 8, 3, 9, 2} {
		order = append(order, LibdeflateLevel+l)
	}
	probe := min(len(prefix), fitProbe)
	type cand struct {
		lvl   int
		score int64
		rate  float64
	}
	var cands []cand
	for _, lvl := range order {
		score, rate, err := trial(lvl, probe)
		if err != nil {
			return 0, 0, err
		}
		cands = append(cands, cand{lvl, score, rate})
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score < cands[j].score })
	if probe == len(prefix) {
		return cands[0].lvl, cands[0].rate, nil
	}
	// The finalists: the best two, and the best of the family they leave
	// out (the probe may end before any header: on very repetitive data
	// the families' matchers can agree that far).
	finalists := cands[:fitFinalists-1]
	for _, c := range cands[fitFinalists-1:] {
		if family(c.lvl) != family(cands[0].lvl) || family(c.lvl) != family(cands[1].lvl) {
			finalists = append(finalists[:len(finalists):len(finalists)], c)
			break
		}
	}
	best := cand{score: -1}
	for _, c := range finalists {
		score, rate, err := trial(c.lvl, len(prefix))
		if err != nil {
			return 0, 0, err
		}
		if best.score < 0 || score < best.score {
			best = cand{c.lvl, score, rate}
		}
		if rate <= fitClose && st.Headers == 0 {
			break // (pigz's chunk boundaries cost a few corrections)
		}
	}
	return best.lvl, best.rate, nil
}

const (
	// fitProbe is the content every level is tried on; fitFinalists how
	// many of the best go on to the whole prefix.
	fitProbe     = 128 << 10
	fitFinalists = 3
	fitClose     = 0.001
)

func family(lvl int) Family { return Levels[lvl].Family }

func encodeModel(ctx context.Context, w *bufio.Writer, fr *bufio.Reader, content io.Reader, p Params, st *ModelStats, stopAt int64, ranked bool, full func() bool) error {
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(fr, head); err != nil || string(head) != magic {
		return corrupt("bad magic")
	}
	lazy := byte(0)
	if p.Lazy {
		lazy = 1
	}
	if p.Family != FamilyZlib {
		w.WriteByte(byte(p.Family))
		if p.Lazy2 {
			lazy = 2
		}
	}
	w.WriteByte(lazy)
	for _, v := range []int{p.Good, p.MaxLazy, p.Nice, p.Chain} {
		putUvarint(w, uint64(v))
	}
	run := newModelRun(p, content)
	var hdrBuf []byte
	var corr []byte
	emit := func(b *mblock, final bool) error {
		if full != nil && full() {
			return ErrNoModel // the caller says why
		}
		st.Blocks++
		run.startBlock(b.n, b.inEnds)
		flags := b.h
		if b.inEnds {
			flags |= flagInputEnds
		}
		if b.h>>1 == 0 {
			if stopAt >= 0 && run.pos+b.n > stopAt {
				return errStop
			}
			w.WriteByte(flags)
			putUvarint(w, uint64(b.n))
			w.WriteByte(b.pad)
			run.win.fill(run.pos+b.n+maxMatch+2, run.pos-wSize-1)
			run.skip(b.n)
			run.endBlock(b.n, b.inEnds, final)
			return nil
		}
		// Predict every token; keep the corrections.
		corr = corr[:0]
		ncorr, gap := 0, 0
		q := run.pos
		for k, t := range b.toks {
			if stopAt >= 0 && q+int64(t.span()) > stopAt {
				// A trial's end, within a block.
				st.Tokens += int64(k)
				st.Corrections += int64(ncorr)
				return errStop
			}
			pred := run.m.predict(q)
			if !run.contentOK(q + int64(t.span()) - 1) {
				return corrupt("content shorter than the stream")
			}
			run.count(q, t)
			if pred != t {
				if debugModel && st.Corrections+int64(ncorr) < 30 {
					fmt.Printf("q=%d pred=%d/%d real=%d/%d\n", q, pred.length(), pred.dist(), t.length(), t.dist())
				}
				corr = binary.AppendUvarint(corr, uint64(gap))
				corr = binary.AppendUvarint(corr, uint64(t.length()))
				if t != 0 {
					where := uint64(t.dist())
					if ranked {
						where = where<<1 | 1
						if r, ok := run.m.rankOf(q, t.length(), t.dist()); ok {
							where = uint64(r) << 1
						}
					}
					corr = binary.AppendUvarint(corr, where)
				}
				ncorr++
				gap = 0
			} else {
				gap++
			}
			run.m.step(q, t, pred)
			q += int64(t.span())
		}
		st.Tokens += int64(len(b.toks))
		st.Corrections += int64(ncorr)
		if b.h>>1 == 2 {
			hdrBuf = run.predictHeader(hdrBuf[:0])
			if !bytes.Equal(hdrBuf, b.hdr) {
				flags |= flagHeader
				st.Headers++
			}
		}
		w.WriteByte(flags)
		putUvarint(w, uint64(b.n))
		if flags&flagHeader != 0 {
			w.Write(b.hdr)
		}
		putUvarint(w, uint64(ncorr))
		w.Write(corr)
		run.endBlock(b.n, b.inEnds, final)
		if stopAt >= 0 && run.pos >= stopAt {
			return errStop
		}
		return nil
	}
	var cur, next *mblock
	cur, next = &mblock{}, &mblock{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		tag, err := fr.ReadByte()
		if err != nil {
			return corrupt("truncated: no end marker")
		}
		if tag == tagEnd {
			break
		}
		if tag != tagMember {
			return corrupt("unknown tag 0x%02x", tag)
		}
		hl, err := binary.ReadUvarint(fr)
		if err != nil || hl > maxHeader {
			return corrupt("bad header length")
		}
		hdr := make([]byte, hl)
		if _, err := io.ReadFull(fr, hdr); err != nil {
			return corrupt("truncated")
		}
		w.WriteByte(tagMember)
		putUvarint(w, hl)
		w.Write(hdr)
		run.startMember()
		have := false
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			h, err := fr.ReadByte()
			if err != nil || h > 5 {
				return corrupt("bad block header")
			}
			b := next
			*b = mblock{h: h, toks: b.toks[:0], hdr: b.hdr[:0]}
			switch h >> 1 {
			case 0:
				pad, err := fr.ReadByte()
				if err != nil {
					return corrupt("truncated")
				}
				n, err := binary.ReadUvarint(fr)
				if err != nil || n > 0xffff {
					return corrupt("bad stored length")
				}
				b.pad, b.n = pad, int64(n)
			case 1, 2:
				if h>>1 == 2 {
					hd, err := readDynHeader(fr)
					if err != nil {
						return err
					}
					b.hdr = append(b.hdr, hd...)
				}
				b.toks, b.n, err = formTokens(fr, b.toks)
				if err != nil {
					return err
				}
			}
			if have {
				cur.inEnds = b.n == 0
				if err := emit(cur, false); err != nil {
					return err
				}
			}
			cur, next = b, cur
			have = true
			if h&1 == 1 {
				cur.inEnds = true
				if err := emit(cur, true); err != nil {
					return err
				}
				break
			}
		}
		pad, err := fr.ReadByte()
		if err != nil {
			return corrupt("truncated")
		}
		var tr [8]byte
		if _, err := io.ReadFull(fr, tr[:]); err != nil {
			return corrupt("truncated")
		}
		w.WriteByte(pad)
		w.Write(tr[:])
	}
	n, err := binary.ReadUvarint(fr)
	if err != nil || n > maxTail {
		return corrupt("bad tail")
	}
	tail := make([]byte, n)
	if _, err := io.ReadFull(fr, tail); err != nil {
		return corrupt("truncated tail")
	}
	w.WriteByte(tagEnd)
	putUvarint(w, n)
	w.Write(tail)
	if run.win.err != nil {
		return fault.Errorf(fault.Env, "deflatetok: reading the content: %w", run.win.err)
	}
	return nil
}

// DecodeModel writes the token form that the model form r and the
// blob's content rebuild (Encode then rebuilds the blob from that form
// and the content). The form written is at most maxForm bytes; anything
// malformed is an integrity error.
func DecodeModel(ctx context.Context, w io.Writer, r io.Reader, content io.Reader, maxForm int64) error {
	zr, ranked, family, err := openModelForm(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	lw := &limitWriter{w: w, left: maxForm}
	bw := bufio.NewWriterSize(lw, 1<<16)
	bw.WriteString(magic)
	_, err = decodeModel(ctx, formSink{bw}, bufio.NewReaderSize(zr, 1<<16), content, ranked, family)
	if err == nil {
		err = bw.Flush()
	}
	if lw.err != nil {
		return lw.err
	}
	return err
}

// openModelForm reads a model form's magic (readModelMagic) and opens
// its zstd body, within the bounds every reader of it keeps.
func openModelForm(r io.Reader) (zr *zstd.Decoder, ranked, family bool, err error) {
	br := bufio.NewReader(r)
	if ranked, family, err = readModelMagic(br); err != nil {
		return nil, false, false, err
	}
	zr, err = zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil, false, false, fault.Wrap(fault.Internal, err)
	}
	return zr, ranked, family, nil
}

// readModelMagic reads a model form's magic: whether the form ranks its
// corrections (all but DFHMODL1) and names its matcher family (DFHMODL3).
func readModelMagic(br *bufio.Reader) (ranked, family bool, err error) {
	head := make([]byte, len(modelMagic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != modelMagic && string(head) != modelMagicV1 && string(head) != modelMagicV3 {
		if err == nil && string(head[:7]) == modelMagic[:7] {
			return false, false, corrupt("model form version %q: newer than this diffah reads", head)
		}
		return false, false, corrupt("not a model form (bad magic)")
	}
	return string(head) != modelMagicV1, string(head) == modelMagicV3, nil
}

func readUv(r *bufio.Reader, max uint64) (uint64, error) {
	v, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, corrupt("bad number: %v", err)
	}
	if v > max {
		return 0, corrupt("number %d over %d", v, max)
	}
	return v, nil
}

// modelSink takes the stream decodeModel rebuilds, a part at a time: the
// token form (DecodeModel) or the blob itself (RebuildModel).
type modelSink interface {
	// member starts a gzip member with its header's bytes.
	member(hdr []byte) error
	// stored is a stored block (h: its 3 header bits) and its content.
	stored(h, pad byte, content []byte) error
	// block is a fixed or dynamic block: its dynamic header in the token
	// form's layout (none for a fixed block), its tokens and the bytes
	// of its literals in order.
	block(h byte, hdr []byte, toks []token, lits []byte) error
	// trailer ends a member: the pad bits of its last byte and the gzip
	// trailer.
	trailer(pt []byte) error
	// tail is what follows the last member.
	tail(b []byte) error
}

// formSink writes the token form.
type formSink struct{ w *bufio.Writer }

func (s formSink) member(hdr []byte) error {
	s.w.WriteByte(tagMember)
	putUvarint(s.w, uint64(len(hdr)))
	s.w.Write(hdr)
	return nil
}

func (s formSink) stored(h, pad byte, content []byte) error {
	s.w.WriteByte(h)
	s.w.WriteByte(pad)
	putUvarint(s.w, uint64(len(content)))
	return nil
}

func (s formSink) block(h byte, hdr []byte, toks []token, _ []byte) error {
	s.w.WriteByte(h)
	s.w.Write(hdr)
	writeFormTokens(s.w, toks)
	return nil
}

func (s formSink) trailer(pt []byte) error {
	s.w.Write(pt)
	return nil
}

func (s formSink) tail(b []byte) error {
	s.w.WriteByte(tagEnd)
	putUvarint(s.w, uint64(len(b)))
	s.w.Write(b)
	return nil
}

// decodeModel rebuilds the stream the model form r describes into out;
// it returns the content offset where the stream ended (all the content
// it used).
func decodeModel(ctx context.Context, out modelSink, r *bufio.Reader, content io.Reader, ranked, family bool) (int64, error) {
	var p Params
	maxLazy := byte(1)
	if family {
		// libdeflate: greedy (0), lazy (1) or lazy2 (2).
		f, err := r.ReadByte()
		if err != nil || Family(f) != FamilyLibdeflate {
			return 0, corrupt("unknown matcher family")
		}
		p.Family, maxLazy = Family(f), 2
	}
	lazy, err := r.ReadByte()
	if err != nil || lazy > maxLazy {
		return 0, corrupt("bad parameters")
	}
	p.Lazy, p.Lazy2 = lazy >= 1, lazy == 2
	// Parameters are bounded as the family's are (a longer chain would
	// only make hostile input slow).
	chain := uint64(maxChain)
	if p.Family == FamilyLibdeflate {
		chain = ldMaxDepth
	}
	for i, f := range []*int{&p.Good, &p.MaxLazy, &p.Nice, &p.Chain} {
		v, err := readUv(r, []uint64{maxMatch, maxMatch, maxMatch, chain}[i])
		if err != nil {
			return 0, err
		}
		*f = int(v)
	}
	if p.Chain == 0 {
		return 0, corrupt("chain length 0")
	}
	run := newModelRun(p, content)
	var toks []token
	var hdr, lits, raw []byte
	// readRaw reads n bytes of the form (a header, the tail) into raw.
	readRaw := func(n uint64, what string) error {
		if uint64(cap(raw)) < n {
			raw = make([]byte, n)
		}
		raw = raw[:n]
		if _, err := io.ReadFull(r, raw); err != nil {
			return corrupt("truncated %s", what)
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		tag, err := r.ReadByte()
		if err != nil {
			return 0, corrupt("truncated: no end marker")
		}
		if tag == tagEnd {
			break
		}
		if tag != tagMember {
			return 0, corrupt("unknown tag 0x%02x", tag)
		}
		hl, err := readUv(r, maxHeader)
		if err != nil {
			return 0, err
		}
		if err := readRaw(hl, "header"); err != nil {
			return 0, err
		}
		if err := out.member(raw); err != nil {
			return 0, err
		}
		run.startMember()
		for final := false; !final; {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			flags, err := r.ReadByte()
			if err != nil || flags&7 > 5 || flags>>5 != 0 || flags&flagHeader != 0 && flags>>1&3 != 2 {
				return 0, corrupt("bad block flags")
			}
			h, inEnds := flags&7, flags&flagInputEnds != 0
			final = h&1 == 1
			n, err := readUv(r, maxBlockContent)
			if err != nil {
				return 0, err
			}
			run.startBlock(int64(n), inEnds)
			if h>>1 == 0 {
				pad, err := r.ReadByte()
				if err != nil || n > 0xffff {
					return 0, corrupt("bad stored block")
				}
				run.win.fill(run.pos+int64(n)+maxMatch+2, run.pos-wSize-1)
				if run.win.end() < run.pos+int64(n) {
					return 0, corrupt("content shorter than the stream")
				}
				at := run.pos - run.win.base
				if err := out.stored(h, pad, run.win.buf[at:at+int64(n)]); err != nil {
					return 0, err
				}
				run.skip(int64(n))
				run.endBlock(int64(n), inEnds, final)
				continue
			}
			if flags&flagHeader != 0 {
				if hdr, err = readDynHeader(r); err != nil {
					return 0, err
				}
			}
			ncorr, err := readUv(r, n+1)
			if err != nil {
				return 0, err
			}
			gap := uint64(0)
			if ncorr > 0 {
				if gap, err = readUv(r, n); err != nil {
					return 0, err
				}
			}
			toks, lits = toks[:0], lits[:0]
			end := run.pos + int64(n)
			for q := run.pos; q < end; {
				pred := run.m.predict(q)
				t := pred
				if ncorr > 0 && gap == 0 {
					l, err := readUv(r, maxMatch)
					if err != nil {
						return 0, err
					}
					t = 0
					if l > 0 {
						d, err := readWhere(r, run.m, q, int(l), ranked)
						if err != nil {
							return 0, err
						}
						if l < minMatch || d == 0 {
							return 0, corrupt("bad correction")
						}
						t = matchTok(int(l), int(d))
					}
					ncorr--
					if ncorr > 0 {
						if gap, err = readUv(r, n); err != nil {
							return 0, err
						}
					}
				} else {
					gap--
				}
				if int64(t.span()) > end-q {
					return 0, corrupt("token past the end of its block")
				}
				if !run.contentOK(q + int64(t.span()) - 1) {
					return 0, corrupt("content shorter than the stream")
				}
				if t == 0 {
					c := run.win.buf[q-run.win.base]
					run.litFreq[c]++
					lits = append(lits, c)
				} else {
					run.count(q, t)
				}
				run.m.step(q, t, pred)
				toks = append(toks, t)
				q += int64(t.span())
			}
			if ncorr > 0 {
				return 0, corrupt("corrections past the end of the block")
			}
			var bh []byte
			if h>>1 == 2 {
				if flags&flagHeader == 0 {
					hdr = run.predictHeader(hdr[:0])
				}
				bh = hdr
			}
			if err := out.block(h, bh, toks, lits); err != nil {
				return 0, err
			}
			run.endBlock(int64(n), inEnds, final)
		}
		var pt [9]byte
		if _, err := io.ReadFull(r, pt[:]); err != nil {
			return 0, corrupt("truncated trailer")
		}
		if err := out.trailer(pt[:]); err != nil {
			return 0, err
		}
	}
	n, err := readUv(r, maxTail)
	if err != nil {
		return 0, err
	}
	if err := readRaw(n, "tail"); err != nil {
		return 0, err
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return 0, corrupt("data after the end")
	}
	if err := out.tail(raw); err != nil {
		return 0, err
	}
	if run.win.err != nil {
		return 0, fault.Errorf(fault.Env, "deflatetok: reading the content: %w", run.win.err)
	}
	return run.pos, nil
}

// writeFormTokens writes a block's tokens and its end in the token form.
func writeFormTokens(w *bufio.Writer, toks []token) {
	lits := 0
	flush := func() {
		if lits > 0 {
			w.WriteByte(tokLits)
			putUvarint(w, uint64(lits))
			lits = 0
		}
	}
	for _, t := range toks {
		if t == 0 {
			lits++
			if lits == maxLitRun {
				flush()
			}
			continue
		}
		flush()
		l, d := t.length(), t.dist()
		ls, ds := lenSym(l), distSym(d)
		le, de := l-int(lenBase[ls]), d-int(distBase[ds])
		w.Write(append(w.AvailableBuffer(), tokMatch, byte(ls), byte(le), byte(ds), byte(de), byte(de>>8)))
	}
	flush()
	w.WriteByte(tokEOB)
}

// readWhere reads a correction's match distance: in a ranked form
// (DFHMODL2) its rank among the model's candidates at q, or the distance
// itself; in DFHMODL1 the distance.
func readWhere(r *bufio.Reader, m matcher, q int64, l int, ranked bool) (uint64, error) {
	if !ranked {
		return readUv(r, wSize)
	}
	v, err := readUv(r, wSize<<1|1)
	if err != nil {
		return 0, err
	}
	if v&1 == 1 {
		return v >> 1, nil
	}
	d, ok := m.ofRank(q, l, int(v>>1))
	if !ok {
		return 0, corrupt("correction names candidate %d of a shorter chain", v>>1)
	}
	return uint64(d), nil
}
