package tarpatch

import (
	"archive/tar"
	"errors"
	"io"

	"github.com/diffah/diffah/fault"
)

// Similarity scores, for each source, how much of newTar it can help
// patch: the share of the new tar's regular-file bytes whose path — or
// path with version numbers ignored, as Encode matches them — the source
// also holds. 1 means every new file has an old version there, 0 none.
//
// It is cheap by design, for a caller picking patch sources among many
// baseline layers: sources are read header by header (file data is
// skipped by seeking, nothing is hashed) and newTar is read once as a
// stream. A source that stops parsing counts with what was read, as in
// Encode. A newTar with no file data scores 0 against every source.
func Similarity(newTar io.Reader, sources []Source) ([]float64, error) {
	paths := make([]map[string]bool, len(sources))
	for i, s := range sources {
		paths[i] = map[string]bool{}
		tr := tar.NewReader(&seekCounter{r: io.NewSectionReader(s, 0, s.Size())})
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
				name := cleanName(hdr.Name)
				paths[i][name] = true
				paths[i][normalize(name)] = true
			}
		}
	}
	held := make([]int64, len(sources))
	var total int64
	tr := tar.NewReader(newTar)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "tarpatch: similarity: reading the new tar after %d file bytes: %w", total, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size <= 0 {
			continue
		}
		total += hdr.Size
		name := cleanName(hdr.Name)
		norm := normalize(name)
		for i := range sources {
			if paths[i][name] || paths[i][norm] {
				held[i] += hdr.Size
			}
		}
	}
	scores := make([]float64, len(sources))
	if total == 0 {
		return scores, nil
	}
	for i, h := range held {
		scores[i] = float64(h) / float64(total)
	}
	return scores, nil
}
