package imgdiff

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/ctxio"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// entry is the metadata of one tar entry; content is kept only as a digest.
type entry struct {
	name string // normalized: "/" + cleaned relative path
	typ  string // a Type* constant
	// For whiteouts: target is the path deleted (the directory for opaque ones).
	target string
	opaque bool

	mode         int64 // permission plus setuid/setgid/sticky bits
	uid, gid     int
	uname, gname string
	size         int64
	digest       string // sha256 of the content, regular files only
	link         string // symlink target as written; hardlink target normalized
	special      string // "char", "block", "fifo" or "type X"
	devMajor     int64
	devMinor     int64
	xattrs       string // other PAX records, "k=v" sorted and joined by ";"
	mtime        time.Time
	atime, ctime time.Time
}

// normalize maps a tar name to "/"-rooted form. Leading "/" and "./" are
// dropped; a name that still climbs out of the root keeps its leading ".."
// ("/../x"), so that it is reported as what it is (see climbsOut).
func normalize(name string) string {
	clean := path.Clean(strings.TrimLeft(name, "/"))
	if clean == "." {
		return "/"
	}
	return "/" + clean
}

// climbsOut says whether a normalized name points outside the image root.
func climbsOut(name string) bool {
	return name == "/.." || strings.HasPrefix(name, "/../")
}

// whiteoutTarget returns the name a whiteout file deletes, and false for
// names that only look like one (".wh." alone, or ".wh.." that would delete
// the parent directory).
func whiteoutTarget(dir, base string) (string, bool) {
	t := strings.TrimPrefix(base, whiteoutPrefix)
	if t == "" || t == "." || t == ".." {
		return "", false
	}
	return path.Join(dir, t), true
}

// paxIgnored are PAX records already represented by header fields, or
// timestamps that have their own attributes.
var paxIgnored = map[string]bool{
	"path": true, "linkpath": true, "size": true, "uid": true, "gid": true,
	"uname": true, "gname": true, "mtime": true, "atime": true, "ctime": true,
}

func newEntry(h *tar.Header) *entry {
	e := &entry{
		name: normalize(h.Name),
		mode: h.Mode & 07777, uid: h.Uid, gid: h.Gid, uname: h.Uname, gname: h.Gname,
		size: h.Size, mtime: h.ModTime.UTC(), atime: h.AccessTime.UTC(), ctime: h.ChangeTime.UTC(),
	}
	if h.AccessTime.IsZero() {
		e.atime = time.Time{}
	}
	if h.ChangeTime.IsZero() {
		e.ctime = time.Time{}
	}
	var kv []string
	for k, v := range h.PAXRecords {
		if !paxIgnored[k] {
			kv = append(kv, k+"="+v)
		}
	}
	sort.Strings(kv)
	e.xattrs = strings.Join(kv, ";")

	base := path.Base(e.name)
	if base == opaqueMarker {
		e.typ, e.opaque, e.target = TypeWhiteout, true, path.Dir(e.name)
		return e
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		if t, ok := whiteoutTarget(path.Dir(e.name), base); ok {
			e.typ, e.target = TypeWhiteout, t
			return e
		}
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		e.typ = TypeFile
	case tar.TypeDir:
		e.typ, e.size = TypeDir, 0
	case tar.TypeSymlink:
		e.typ, e.link, e.size = TypeSymlink, h.Linkname, 0
	case tar.TypeLink:
		e.typ, e.size = TypeHardlink, 0
		e.link = normalize(h.Linkname)
	case tar.TypeChar:
		e.typ, e.special, e.devMajor, e.devMinor = TypeSpecial, "char", h.Devmajor, h.Devminor
	case tar.TypeBlock:
		e.typ, e.special, e.devMajor, e.devMinor = TypeSpecial, "block", h.Devmajor, h.Devminor
	case tar.TypeFifo:
		e.typ, e.special = TypeSpecial, "fifo"
	default:
		e.typ, e.special = TypeSpecial, fmt.Sprintf("type %q", h.Typeflag)
	}
	return e
}

// layerIndex holds one layer's entries keyed by normalized name (whiteouts
// under their own ".wh." names, so they never collide with real entries),
// plus the order they appeared in, which flattening needs.
type layerIndex struct {
	byName map[string]*entry
	order  []*entry
}

// maxIndexBytes bounds the entry metadata one comparison keeps in memory
// (names, link targets, PAX records, plus a fixed cost per entry). Layer
// contents are never kept, but headers are: a gzip layer of a few MiB can
// hold millions of entries or megabyte-long names. 192 MiB holds about
// 500,000 entries with ordinary names (both images together), more than
// the largest real images; with the garbage that parsing headers leaves
// for the collector, a hostile layer then peaks under 512 MiB RSS.
const maxIndexBytes = 192 << 20

// entryCost is what an entry costs beyond its strings: the struct, its
// map slot and order slot.
const entryCost = 320

// metaBudget counts the metadata kept across every layer of a comparison
// (both sides read at once, so it is shared and atomic).
type metaBudget struct {
	used  atomic.Int64
	limit int64
}

func newBudget() *metaBudget { return &metaBudget{limit: maxIndexBytes} }

// take charges e to the budget and refuses it once the limit is passed.
func (b *metaBudget) take(e *entry, label string) error {
	n := int64(entryCost + len(e.name) + len(e.target) + len(e.link) + len(e.uname) + len(e.gname) + len(e.xattrs) + len(e.special))
	if b.used.Add(n) > b.limit {
		return fault.WithHint(fault.Errorf(fault.Integrity, "imgdiff: %s: the images' layers hold more than %d MiB of entry metadata; refusing to index more (hostile or corrupt layer?)", label, b.limit>>20),
			fault.Integrity, "compare smaller images, or check the layer with tar -tv")
	}
	return nil
}

// readIndex parses a layer tar, hashing regular files as they stream past.
// label names the layer in errors. A later entry with the same name replaces
// an earlier one, as extraction would. Metadata kept is charged to budget.
func readIndex(ctx context.Context, r io.Reader, label string, budget *metaBudget) (*layerIndex, error) {
	ix := &layerIndex{byName: map[string]*entry{}}
	tr := tar.NewReader(r)
	h := sha256.New()
	buf := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return ix, nil
		}
		if err != nil {
			return nil, readErr(fmt.Errorf("imgdiff: %s: reading tar header: %w", label, err))
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		e := newEntry(hdr)
		if err := budget.take(e, label); err != nil {
			return nil, err
		}
		if e.typ == TypeFile {
			// A file's content is only ever hashed as it streams, never
			// held: a sparse entry can claim 2^40 bytes of holes. The
			// context is checked on every read, so such a file (or a
			// decompression bomb) stops when the command is cancelled.
			h.Reset()
			n, err := io.CopyBuffer(h, ctxio.Reader{Ctx: ctx, R: tr}, buf)
			if err != nil {
				return nil, readErr(fmt.Errorf("imgdiff: %s: reading %s: %w", label, hdr.Name, err))
			}
			e.size, e.digest = n, "sha256:"+hex.EncodeToString(h.Sum(nil))
		}
		if old, ok := ix.byName[e.name]; ok {
			*old = *e // keep order position stable; content of the last one wins
			continue
		}
		ix.byName[e.name] = e
		ix.order = append(ix.order, e)
	}
}

// readErr tags a failure while streaming a layer. Tags set deeper (a registry
// transport, say) win; an untagged failure means the bytes were bad.
func readErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	return fault.Wrap(fault.Integrity, err)
}

// indexer reads layers and remembers them by diffID, so a layer shared by
// both images (or repeated) is read once, even when both sides ask for it at
// the same time.
type indexer struct {
	mu       sync.Mutex
	byDiffID map[v1.Hash]*indexCall
	budget   *metaBudget
}

// indexCall is one reading of a layer; done closes when ix or err is set.
type indexCall struct {
	done chan struct{}
	ix   *layerIndex
	err  error
}

func newIndexer() *indexer {
	return &indexer{byDiffID: map[v1.Hash]*indexCall{}, budget: newBudget()}
}

// cached returns the index already read for id, if any.
func (x *indexer) cached(id v1.Hash) (*layerIndex, bool) {
	x.mu.Lock()
	c, ok := x.byDiffID[id]
	x.mu.Unlock()
	if !ok {
		return nil, false
	}
	select {
	case <-c.done:
		return c.ix, c.err == nil
	default:
		return nil, false
	}
}

// layerLabel names layer i of s in errors, with its digest from the manifest.
func layerLabel(s *side, i int) string {
	if len(s.manifest.Layers) == len(s.layers) {
		return fmt.Sprintf("input-%d layer %d (%s)", s.n, i, s.manifest.Layers[i].Digest)
	}
	return fmt.Sprintf("input-%d layer %d", s.n, i)
}

func (x *indexer) index(ctx context.Context, s *side, i int) (*layerIndex, error) {
	id, err := s.diffID(i)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	c, ok := x.byDiffID[id]
	if !ok {
		c = &indexCall{done: make(chan struct{})}
		x.byDiffID[id] = c
	}
	x.mu.Unlock()
	if !ok {
		c.ix, c.err = readLayer(ctx, s, i, id, x.budget)
		close(c.done)
		return c.ix, c.err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	return c.ix, nil
}

// readLayer streams layer i of s once: entries are indexed and file
// contents hashed as they pass.
func readLayer(ctx context.Context, s *side, i int, id v1.Hash, budget *metaBudget) (*layerIndex, error) {
	l := s.layers[i]
	label := layerLabel(s, i)
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fault.Wrap(fault.Env, fmt.Errorf("imgdiff: %s: opening: %w", label, err))
	}
	defer rc.Close()
	// The cache is keyed by the diffID the image claims, so check the claim
	// while the bytes pass: two different layers must never share an index.
	h := sha256.New()
	tee := io.TeeReader(rc, h)
	ix, err := readIndex(ctx, tee, label, budget)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, ctxio.Reader{Ctx: ctx, R: tee}); err != nil {
		return nil, readErr(fmt.Errorf("imgdiff: %s: reading past the tar end: %w", label, err))
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); id.Algorithm == "sha256" && got != id.String() {
		return nil, fault.Errorf(fault.Integrity,
			"imgdiff: %s: uncompressed content is %s but the config says diffID %s: the image is corrupt", label, got, id)
	}
	return ix, nil
}

// both runs f for each side at once: layer reading is CPU-bound
// (decompression and hashing), so two streams use two cores. The first error
// cancels the other side.
func both(ctx context.Context, s0, s1 *side, f func(ctx context.Context, s *side) error) error {
	g, ctx := errgroup.WithContext(ctx)
	var errs [2]error
	for k, s := range []*side{s0, s1} {
		g.Go(func() error {
			errs[k] = f(ctx, s)
			return errs[k]
		})
	}
	g.Wait()
	// Prefer the error that caused the cancellation over the one it caused.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	if errs[0] != nil {
		return errs[0]
	}
	return errs[1]
}

// flatten applies a side's layers in order the way an OCI runtime would:
// whiteouts in a layer hide lower entries (not their own layer's), an opaque
// whiteout hides everything lower below its directory, and a non-directory
// replacing a directory (explicit or implied by its children) hides that
// directory's contents.
func (x *indexer) flatten(ctx context.Context, s *side) (map[string]*entry, error) {
	fs := newFilesystem()
	for i := range s.layers {
		ix, err := x.index(ctx, s, i)
		if err != nil {
			return nil, err
		}
		fs.apply(ix)
	}
	return fs.entries, nil
}

// filesystem is a flattened view under construction.
type filesystem struct {
	entries map[string]*entry
	// parents holds every directory that has ever had an entry below it, so
	// that hiding the contents of a path scans the tree only when there can
	// be contents: most whiteouts and files have none.
	parents map[string]bool
}

func newFilesystem() *filesystem {
	return &filesystem{entries: map[string]*entry{}, parents: map[string]bool{}}
}

func (fs *filesystem) apply(ix *layerIndex) {
	for _, e := range ix.order {
		if e.typ != TypeWhiteout {
			continue
		}
		if !e.opaque {
			delete(fs.entries, e.target)
		}
		fs.removeBelow(e.target)
	}
	for _, e := range ix.order {
		if e.typ == TypeWhiteout {
			continue
		}
		if e.typ != TypeDir {
			fs.removeBelow(e.name)
		}
		fs.entries[e.name] = e
		// Walk to the root every time: removeBelow forgets only the path it
		// empties, so a deeper ancestor may be marked while a shallower one
		// is not.
		for p := e.name; p != "/"; {
			p = path.Dir(p)
			fs.parents[p] = true
		}
	}
}

// removeBelow deletes every entry strictly below dir.
func (fs *filesystem) removeBelow(dir string) {
	if !fs.parents[dir] {
		return
	}
	delete(fs.parents, dir)
	prefix := dir + "/"
	if dir == "/" {
		prefix = "/"
	}
	for name := range fs.entries {
		if name != dir && strings.HasPrefix(name, prefix) {
			delete(fs.entries, name)
		}
	}
}
