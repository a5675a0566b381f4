package imgdiff

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/diffah/diffah/fault"
)

// writeReport copies the regular files named by file-level changes out of
// each side's flattened filesystem into dir/input-N/PATH, in a second pass
// over the layer streams. Only regular files are written, with mode 0644 and
// no owner: the report is for reading with diff, never for running, and a
// symlink written there could point diff (or the next write) outside dir.
// Files are written through an os.Root, so even an overlooked name cannot
// escape it.
func writeReport(ctx context.Context, dir string, changes []Change, x *indexer, s0, s1 *side) error {
	wanted := map[string]bool{}
	for _, c := range changes {
		if typeRank(c.Type) < 3 {
			continue
		}
		if climbsOut(c.Name) {
			return fault.Errorf(fault.Integrity,
				"imgdiff: refusing to write %q under report dir %s: the name climbs out of the image root (hostile or corrupt layer)", c.Name, dir)
		}
		if c.Name != "/" {
			wanted[c.Name] = true
		}
	}
	// relevant holds the wanted paths and their ancestors: an entry at an
	// ancestor can whiteout or replace a wanted file.
	relevant := map[string]bool{}
	for p := range wanted {
		for q := p; q != "/" && !relevant[q]; q = path.Dir(q) {
			relevant[q] = true
		}
	}
	relevant["/"] = true

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: creating report dir: %w", err))
	}
	sub := func(s *side) string { return filepath.Join(dir, fmt.Sprintf("input-%d", s.n)) }
	for _, s := range []*side{s0, s1} {
		if err := os.Mkdir(sub(s), 0o755); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fault.WithHint(fault.Errorf(fault.Usage, "imgdiff: report dir: %s already exists", sub(s)),
					fault.Usage, "remove it or choose another --report-dir")
			}
			return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: creating report dir: %w", err))
		}
	}
	if len(wanted) == 0 {
		return nil
	}
	return both(ctx, s0, s1, func(ctx context.Context, s *side) error {
		return reportSide(ctx, sub(s), s, x, wanted, relevant)
	})
}

// reportSide replays one side's layers onto the report tree, limited to the
// relevant paths. written remembers which layer wrote each file so that a
// whiteout only hides files of lower layers, as in flatten.
func reportSide(ctx context.Context, sub string, s *side, x *indexer, wanted, relevant map[string]bool) error {
	root, err := os.OpenRoot(sub)
	if err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: opening report dir: %w", err))
	}
	defer root.Close()
	written := map[string]int{}
	remove := func(layer int, match func(p string) bool) error {
		for p, l := range written {
			if l < layer && match(p) {
				if err := root.Remove(strings.TrimPrefix(p, "/")); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report dir %s: removing %s: %w", sub, p, err))
				}
				delete(written, p)
			}
		}
		return nil
	}
	for i, l := range s.layers {
		if skipLayer(x, s, i, wanted, relevant) {
			continue
		}
		label := layerLabel(s, i, l)
		rc, err := l.Uncompressed()
		if err != nil {
			return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: %s: opening: %w", label, err))
		}
		tr := tar.NewReader(rc)
		for {
			if err := ctx.Err(); err != nil {
				rc.Close()
				return err
			}
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return readErr(fmt.Errorf("imgdiff: %s: reading tar header: %w", label, err))
			}
			e := newEntry(hdr)
			if err := applyReport(root, tr, e, i, label, wanted, relevant, written, remove); err != nil {
				rc.Close()
				return err
			}
		}
		rc.Close()
	}
	return nil
}

func applyReport(root *os.Root, tr io.Reader, e *entry, i int, label string,
	wanted, relevant map[string]bool, written map[string]int, remove func(int, func(string) bool) error) error {
	switch {
	case e.typ == TypeWhiteout:
		if !relevant[e.target] {
			return nil
		}
		return remove(i, func(p string) bool {
			return (!e.opaque && p == e.target) || isBelow(p, e.target)
		})
	case !relevant[e.name]:
		return nil
	}
	if e.typ != TypeDir {
		if err := remove(i, func(p string) bool { return isBelow(p, e.name) }); err != nil {
			return err
		}
	}
	if !wanted[e.name] {
		return nil
	}
	if e.typ != TypeFile {
		return remove(i+1, func(p string) bool { return p == e.name })
	}
	rel := strings.TrimPrefix(e.name, "/")
	if err := makeParents(root, rel, written); err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report: creating directory for %s: %w", e.name, err))
	}
	// A directory left by lower layers' files (now hidden) gives way.
	if err := root.RemoveAll(rel); err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report: replacing %s: %w", e.name, err))
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report: creating %s: %w", e.name, err))
	}
	if _, err := io.Copy(f, tr); err != nil {
		f.Close()
		return readErr(fmt.Errorf("imgdiff: %s: copying %s to report: %w", label, e.name, err))
	}
	if err := f.Close(); err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report: writing %s: %w", e.name, err))
	}
	written[e.name] = i
	return nil
}

// makeParents creates rel's parent directories. A file written earlier where
// a directory is now needed (a layer put entries below a path that a lower
// layer made a file) gives way, as it would on extraction.
func makeParents(root *os.Root, rel string, written map[string]int) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	if err := root.MkdirAll(dir, 0o755); err == nil {
		return nil
	}
	for p := dir; p != "."; p = path.Dir(p) {
		if fi, err := root.Lstat(p); err == nil && !fi.IsDir() {
			if err := root.Remove(p); err != nil {
				return err
			}
			delete(written, "/"+p)
		}
	}
	return root.MkdirAll(dir, 0o755)
}

func isBelow(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

// skipLayer says whether a layer already indexed in the first pass can change
// none of the wanted paths (by holding one, or by deleting or replacing an
// ancestor), so its stream need not be read again.
func skipLayer(x *indexer, s *side, i int, wanted, relevant map[string]bool) bool {
	id, err := s.diffID(i)
	if err != nil {
		return false
	}
	ix, ok := x.cached(id)
	if !ok {
		return false
	}
	for _, e := range ix.order {
		switch {
		case e.typ == TypeWhiteout:
			if relevant[e.target] {
				return false
			}
		case e.typ == TypeDir:
			// A directory over a directory changes nothing below it.
			if wanted[e.name] {
				return false
			}
		case relevant[e.name]:
			return false
		}
	}
	return true
}
