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

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/ctxio"
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
// relevant paths.
func reportSide(ctx context.Context, sub string, s *side, x *indexer, wanted, relevant map[string]bool) error {
	root, err := os.OpenRoot(sub)
	if err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: opening report dir: %w", err))
	}
	defer root.Close()
	t := &reportTree{root: root, sub: sub, written: map[string]int{}, parents: map[string]bool{}}
	for i, l := range s.layers {
		if skipLayer(x, s, i, wanted, relevant) {
			continue
		}
		if err := t.replay(ctx, l, i, layerLabel(s, i), wanted, relevant); err != nil {
			return err
		}
	}
	return nil
}

// reportTree is one side of the report as layers are replayed onto it.
// written remembers which layer wrote each file, so that a whiteout hides
// only files of lower layers, as in filesystem.apply; parents holds the
// directories that have had files written below them, so that hiding a
// path's contents scans written only when there can be some.
type reportTree struct {
	root    *os.Root
	sub     string
	written map[string]int
	parents map[string]bool
}

func (t *reportTree) replay(ctx context.Context, l v1.Layer, i int, label string, wanted, relevant map[string]bool) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: %s: opening: %w", label, err))
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readErr(fmt.Errorf("imgdiff: %s: reading tar header: %w", label, err))
		}
		e := newEntry(hdr)
		switch {
		case e.typ == TypeWhiteout:
			if relevant[e.target] {
				if !e.opaque {
					err = t.remove(e.target, i)
				}
				if err == nil {
					err = t.removeBelow(e.target, i)
				}
			}
		case !relevant[e.name]:
		case e.typ == TypeFile && wanted[e.name]:
			err = t.write(e.name, ctxio.Reader{Ctx: ctx, R: tr}, i, label)
		case e.typ == TypeDir:
			// A directory over a file replaces the file; over a directory it
			// changes nothing below.
			err = t.remove(e.name, i+1)
		default:
			// Anything else at a relevant path hides what lower layers put
			// there and below it; the same layer may have written the path
			// itself just before (a repeated name), and loses it too.
			if err = t.removeBelow(e.name, i); err == nil {
				err = t.remove(e.name, i+1)
			}
		}
		if err != nil {
			return err
		}
	}
}

// remove deletes p if a layer below layer wrote it.
func (t *reportTree) remove(p string, layer int) error {
	if l, ok := t.written[p]; !ok || l >= layer {
		return nil
	}
	if err := t.root.Remove(strings.TrimPrefix(p, "/")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report dir %s: removing %s: %w", t.sub, p, err))
	}
	delete(t.written, p)
	return nil
}

// removeBelow deletes what layers below layer wrote strictly below dir.
func (t *reportTree) removeBelow(dir string, layer int) error {
	if !t.parents[dir] {
		return nil
	}
	for p := range t.written {
		if isBelow(p, dir) {
			if err := t.remove(p, layer); err != nil {
				return err
			}
		}
	}
	return nil
}

// write copies a file's content from the layer stream to the report.
func (t *reportTree) write(p string, r io.Reader, layer int, label string) error {
	if err := t.removeBelow(p, layer); err != nil {
		return err
	}
	rel := strings.TrimPrefix(p, "/")
	if err := t.makeParents(rel); err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report: creating directory for %s: %w", p, err))
	}
	if t.parents[p] {
		// A directory made for lower layers' files (now hidden) gives way.
		if err := t.root.RemoveAll(rel); err != nil {
			return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report: replacing %s: %w", p, err))
		}
		delete(t.parents, p)
	}
	f, err := t.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report: creating %s: %w", p, err))
	}
	if err := copySparse(f, r); err != nil {
		f.Close()
		if fault.KindOf(err, 0) == fault.Env {
			return fmt.Errorf("imgdiff: report: writing %s: %w", p, err)
		}
		return readErr(fmt.Errorf("imgdiff: %s: copying %s to report: %w", label, p, err))
	}
	if err := f.Close(); err != nil {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: report: writing %s: %w", p, err))
	}
	t.written[p] = layer
	for q := p; q != "/"; {
		q = path.Dir(q)
		t.parents[q] = true
	}
	return nil
}

// makeParents creates rel's parent directories. A file written earlier where
// a directory is now needed (a layer put entries below a path that a lower
// layer made a file) gives way, as it would on extraction.
func (t *reportTree) makeParents(rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	if err := t.root.MkdirAll(dir, 0o755); err == nil {
		return nil
	}
	for p := dir; p != "."; p = path.Dir(p) {
		if fi, err := t.root.Lstat(p); err == nil && !fi.IsDir() {
			if err := t.root.Remove(p); err != nil {
				return err
			}
			delete(t.written, "/"+p)
		}
	}
	return t.root.MkdirAll(dir, 0o755)
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

// copySparse copies r to f, leaving runs of zeros as holes: a sparse layer
// entry claiming terabytes of zeros costs the report no disk space. Write
// failures are fault.Env; read failures are returned as they are.
func copySparse(f *os.File, r io.Reader) error {
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 && !isZero(buf[:n]) {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return fault.Wrap(fault.Env, err)
			}
		}
		off += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	// The file was created empty (O_TRUNC), so trailing holes need the size set.
	if err := f.Truncate(off); err != nil {
		return fault.Wrap(fault.Env, err)
	}
	return nil
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
