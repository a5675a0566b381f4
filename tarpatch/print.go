package tarpatch

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"hash/fnv"
	"io"

	"github.com/diffah/diffah/fault"
)

// A Print is what choosing patch sources needs to know of a layer,
// gathered in one streaming pass: for each regular file of at least
// PrintMin bytes its size, a hash of its path and of its path with
// version numbers ignored (as Encode matches files), and a hash of its
// content (as Encode finds identical files, which it copies). Smaller
// files count in Total only: they weigh little and would make a print
// of a large tree large.
//
// Prints let a caller with many candidate layers — the layers a bundle
// rebuilds before this one — find the ones that hold this layer's files,
// by content as well as by path, without spooling any of them: a print
// costs tens of bytes per large file, not the layer.
type Print struct {
	// Total is the size of every regular file of the layer.
	Total int64
	files []printFile
}

// PrintMin is the least file size a Print records.
const PrintMin = 4 << 10

// maxPrintFiles bounds a print (hostile or huge layers): files past it
// count in Total only.
const maxPrintFiles = 1 << 16

type printFile struct {
	size       int64
	path, norm uint64
	sum        [16]byte
}

func pathHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Fingerprint reads a tar as a stream and returns its print. A tar that
// stops parsing gives the print of what was read, as Encode indexes it.
func Fingerprint(r io.Reader) (*Print, error) {
	p := &Print{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return p, nil
		}
		if err != nil {
			return p, nil
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size <= 0 || isSparse(hdr) {
			continue
		}
		p.Total += hdr.Size
		if hdr.Size < PrintMin || len(p.files) == maxPrintFiles {
			continue
		}
		name := cleanName(hdr.Name)
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return p, nil
			}
			return nil, fault.Errorf(fault.Env, "tarpatch: fingerprint: reading %s: %w", name, err)
		}
		f := printFile{size: hdr.Size, path: pathHash(name), norm: pathHash(normalize(name))}
		copy(f.sum[:], h.Sum(nil))
		p.files = append(p.files, f)
	}
}

// PrintIndex holds the prints of candidate sources, in the order they
// were added, and finds which of them hold a new layer's files.
type PrintIndex struct {
	n      int
	byHash map[[16]byte][]int
	byPath map[uint64][]int
}

// NewPrintIndex returns an empty index.
func NewPrintIndex() *PrintIndex {
	return &PrintIndex{byHash: map[[16]byte][]int{}, byPath: map[uint64][]int{}}
}

// Add adds a candidate and returns its number (0, 1, …).
func (x *PrintIndex) Add(p *Print) int {
	id := x.n
	x.n++
	addOnce := func(m map[uint64][]int, k uint64) {
		if l := m[k]; len(l) == 0 || l[len(l)-1] != id {
			m[k] = append(l, id)
		}
	}
	for _, f := range p.files {
		if l := x.byHash[f.sum]; len(l) == 0 || l[len(l)-1] != id {
			x.byHash[f.sum] = append(l, id)
		}
		addOnce(x.byPath, f.path)
		addOnce(x.byPath, f.norm)
	}
	return id
}

// Gains scores every candidate for the new layer p whose sources are
// already own: the bytes of p's files the candidate would let Encode
// copy (same content) that no print of own holds, plus the bytes of
// files it holds an old version of (same path, versions ignored) where
// own holds neither the content nor a version. What own already covers
// gains nothing, so a candidate is worth adding only for what it brings.
// Only candidates with a gain appear in the result.
func (x *PrintIndex) Gains(p *Print, own []*Print) map[int]int64 {
	ownHash := map[[16]byte]bool{}
	ownPath := map[uint64]bool{}
	for _, o := range own {
		for _, f := range o.files {
			ownHash[f.sum] = true
			ownPath[f.path] = true
			ownPath[f.norm] = true
		}
	}
	gains := map[int]int64{}
	for _, f := range p.files {
		if ownHash[f.sum] {
			continue
		}
		exact := x.byHash[f.sum]
		for _, c := range exact {
			gains[c] += f.size
		}
		if ownPath[f.path] || ownPath[f.norm] {
			continue
		}
		seen := map[int]bool{}
		for _, c := range exact {
			seen[c] = true
		}
		for _, c := range append(append([]int(nil), x.byPath[f.path]...), x.byPath[f.norm]...) {
			if !seen[c] {
				seen[c] = true
				gains[c] += f.size
			}
		}
	}
	return gains
}
