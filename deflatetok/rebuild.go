package deflatetok

import (
	"bufio"
	"bytes"
	"context"
	"io"

	"github.com/diffah/diffah/internal/ctxio"
)

// RebuildModel rebuilds the gzip blob from its model form r and its
// content, writing it to w: what DecodeModel then Encode do, in one pass
// and without the token form between them (the tokens go from the model
// straight to the bit writer). The blob written is at most o.MaxOutput
// bytes, the content must be used up exactly, and anything malformed is
// an integrity error, as with Encode. (That the content and the blob are
// the right ones the caller checks, against the diffID and the digest.)
func RebuildModel(ctx context.Context, w io.Writer, r io.Reader, content io.Reader, o EncodeOptions) error {
	zr, ranked, family, err := openModelForm(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	lw := &limitWriter{w: w, left: o.MaxOutput}
	s := &blobSink{}
	s.e.out = &bitWriter{w: lw, buf: make([]byte, 0, 68<<10)}
	s.e.in = bufio.NewReaderSize(&s.hr, 512)
	// The content is read through a counter so that what follows the
	// stream's end can be told from what the window read ahead.
	cr := &ctxio.CountingReader{R: content}
	used, err := decodeModel(ctx, s, bufio.NewReaderSize(zr, 1<<16), cr, ranked, family)
	if err == nil {
		err = s.e.out.err
	}
	if err == nil && used != cr.N {
		err = corrupt("content longer than the stream")
	}
	if err == nil {
		// The window stops reading at the content's end only when it
		// needs more; make sure nothing follows.
		var b [1]byte
		if n, _ := io.ReadFull(content, b[:]); n > 0 {
			err = corrupt("content longer than the stream")
		}
	}
	if err == nil {
		s.e.out.flush()
		err = s.e.out.err
	}
	if lw.err != nil {
		return lw.err
	}
	return err
}

// blobSink writes the blob, with an encoder (Encode's) whose form input
// is only ever a dynamic header, fed one at a time through hr.
type blobSink struct {
	e  encoder
	hr bytes.Reader
}

func (s *blobSink) raw(b []byte) error {
	for _, c := range b {
		s.e.out.write(uint32(c), 8)
	}
	return s.e.out.err
}

func (s *blobSink) member(hdr []byte) error {
	if !s.e.out.aligned() {
		return corrupt("member not byte-aligned")
	}
	return s.raw(hdr)
}

func (s *blobSink) stored(h, pad byte, content []byte) error {
	s.e.out.write(uint32(h), 3)
	if err := s.e.padWith(pad); err != nil {
		return err
	}
	n := uint32(len(content))
	s.e.out.write(n, 16)
	s.e.out.write(^n&0xffff, 16)
	return s.raw(content)
}

func (s *blobSink) block(h byte, hdr []byte, toks []token, lits []byte) error {
	out := s.e.out
	out.write(uint32(h), 3)
	lit, dist := &fixedLit, &fixedDist
	if h>>1 == 2 {
		s.hr.Reset(hdr)
		s.e.in.Reset(&s.hr)
		if err := s.e.dynamic(); err != nil {
			return err
		}
		if s.e.in.Buffered() > 0 || s.hr.Len() > 0 {
			return corrupt("dynamic header longer than its codes")
		}
		lit, dist = &s.e.lit, &s.e.dist
	}
	j := 0
	for _, t := range toks {
		if t == 0 {
			c := lits[j]
			j++
			if lit.length[c] == 0 {
				return corrupt("symbol %d has no code", c)
			}
			out.write(uint32(lit.code[c]), uint(lit.length[c]))
			continue
		}
		l, d := t.length(), t.dist()
		ls, ds := lenSymTab[l], distSymTab[d]
		if err := s.e.sym(lit, 257+int(ls)); err != nil {
			return err
		}
		out.write(uint32(l-int(lenBase[ls])), uint(lenExtra[ls]))
		if err := s.e.sym(dist, int(ds)); err != nil {
			return err
		}
		out.write(uint32(d-int(distBase[ds])), uint(distExtr[ds]))
	}
	if err := s.e.sym(lit, 256); err != nil {
		return err
	}
	return out.err
}

func (s *blobSink) trailer(pt []byte) error {
	if err := s.e.padWith(pt[0]); err != nil {
		return err
	}
	return s.raw(pt[1:])
}

func (s *blobSink) tail(b []byte) error { return s.raw(b) }
