package tarpatch

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/ctxio"
	"github.com/diffah/diffah/internal/membudget"
)

// EncodeOptions tune Encode.
type EncodeOptions struct {
	// Jobs is how many files are delta-compressed at once (default
	// runtime.NumCPU()). The output does not depend on it.
	Jobs int
	// Level is the zstd level for deltas and literals (default
	// SpeedBestCompression).
	Level zstd.EncoderLevel
	// FileByFile skips the whole form a small layer may take (see
	// Encode): for measuring and testing the file-by-file codec.
	FileByFile bool
	// MaxChunk cuts larger files into chunks, each compressed against the
	// matching region of the old file (default 12 MiB); memory is bounded
	// by a few chunks, not by the layer or file size.
	MaxChunk int64
	// FileCosts fills Stats.Costs: what each file of the new tar costs
	// in the patch. It costs a record per file.
	FileCosts bool
	// Workers, when set, is a memory budget shared with other encoders
	// running beside this one (pack computes a layer's floor at the same
	// time): while it compresses, a worker holds as many bytes of it as
	// its dictionary and data have, and membudget.BestTables more for an
	// encoder at the best level (all of it when that is more), so
	// together they keep the cores busy without holding more encoders'
	// memory than the budget allows, whatever Jobs says. The output does
	// not depend on it.
	Workers *membudget.Budget
	// Format is the format written: 0 or 4 for Codec, 3 for CodecV3
	// (no edit form), 2 for CodecV2 (nor re-indented ranges), for a patch
	// embedded where the codec name cannot say which (diffah-deflate/1),
	// so older readers decode it.
	Format int
}

// Stats describe an encoding.
type Stats struct {
	NewSize   int64 `json:"newSize"`
	PatchSize int64 `json:"patchSize"`
	Files     int   `json:"files"`
	Copied    int   `json:"copied"`
	Deltas    int   `json:"deltas"`
	Literals  int   `json:"literals"`
	// DeltaIn / DeltaOut are the bytes of files encoded as deltas, before
	// and after.
	DeltaIn  int64 `json:"deltaIn"`
	DeltaOut int64 `json:"deltaOut"`
	// ADiffs counts the chunks encoded as ADIFF (approximate copies, see
	// adiff.go), among Deltas.
	ADiffs int `json:"adiffs,omitempty"`
	// Whole is set when a small layer travelled as one literal against
	// its whole source, or in the edit form, whose changed bytes are one
	// zstd frame too (see Encode).
	Whole bool `json:"whole,omitempty"`
	// Costs, with EncodeOptions.FileCosts, attributes the patch's bytes
	// to the files of the new tar (see stats.go).
	Costs *Costs `json:"-"`
}

// loc is a file's content in a source tar.
type loc struct {
	src  int
	off  int64
	size int64
	name string
	// shift re-indents a dictionary range (format 3; see reindent.go).
	shift int
}

// index maps what the sources hold.
type index struct {
	sources []Source
	byHash  map[[32]byte]loc
	byPath  map[string]loc
	byNorm  map[string][]loc
	byDir   map[string][]loc
	// bySize lists the source files larger than one chunk by size: a new
	// file of that size may be one of them (copied chunk by chunk).
	bySize map[int64][]loc
	// hdrByPath is, per regular file, the raw bytes before its data (the
	// previous entry's padding and the headers since), for COPY of
	// unchanged headers.
	hdrByPath map[string]loc
	// sketches pair files by content (see pairing.go).
	sketches *sketchIndex
}

var versionRE = regexp.MustCompile(`[0-9]+`)

// normalize drops version-like parts of a path, so lib/foo-1.2.3/x.so.3.0.11
// matches its successor lib/foo-1.2.4/x.so.3.0.13.
func normalize(name string) string { return versionRE.ReplaceAllString(cleanName(name), "#") }

func cleanName(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// buildIndex reads every source tar once, hashing regular files.
func buildIndex(ctx context.Context, sources []Source) (*index, error) {
	ix := &index{sources: sources, byHash: map[[32]byte]loc{}, byPath: map[string]loc{}, byNorm: map[string][]loc{}, byDir: map[string][]loc{}, bySize: map[int64][]loc{}, hdrByPath: map[string]loc{}, sketches: &sketchIndex{}}
	defer ix.sketches.finish()
	for si, s := range sources {
		cr := &countingReader{r: io.NewSectionReader(s, 0, s.Size())}
		tr := tar.NewReader(cr)
		var prevEnd int64
		for {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				// A source we cannot fully parse still helps for what was
				// read; the patch stays correct either way.
				break
			}
			dataStart := cr.n
			regionStart := prevEnd
			// The region before the next data starts right after this data:
			// padding is part of it, as it is of the raw bytes Encode gathers.
			prevEnd = dataStart + hdr.Size
			if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 || isSparse(hdr) {
				continue
			}
			l := loc{src: si, off: cr.n, size: hdr.Size, name: cleanName(hdr.Name)}
			if _, ok := ix.hdrByPath[l.name]; !ok && dataStart-regionStart <= 64<<10 {
				ix.hdrByPath[l.name] = loc{src: si, off: regionStart, size: dataStart - regionStart}
			}
			h := sha256.New()
			var sk *sketcher
			var dst io.Writer = h
			if hdr.Size >= sketchMin {
				sk = &sketcher{}
				dst = io.MultiWriter(h, sk)
			}
			if _, err := io.Copy(dst, tr); err != nil {
				return nil, fault.Errorf(fault.Env, "tarpatch: reading source %d: %w", si, err)
			}
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			if _, ok := ix.byHash[sum]; !ok {
				ix.byHash[sum] = l
				if sk != nil {
					ix.sketches.add(l, sk.sketch())
				}
			}
			if _, ok := ix.byPath[l.name]; !ok {
				ix.byPath[l.name] = l
			}
			if l.size > minChunkCopy && len(ix.bySize[l.size]) < 4 {
				ix.bySize[l.size] = append(ix.bySize[l.size], l)
			}
			n := normalize(l.name)
			ix.byNorm[n] = append(ix.byNorm[n], l)
			ix.byDir[path.Dir(l.name)] = append(ix.byDir[path.Dir(l.name)], l)
		}
	}
	return ix, nil
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// match finds the old version of a file: same path, else same path with
// versions ignored (closest size wins), else nothing.
func (ix *index) match(name string, size int64) (loc, bool) {
	if l, ok := ix.byPath[name]; ok {
		return l, true
	}
	cands := ix.byNorm[normalize(name)]
	if len(cands) == 0 {
		return loc{}, false
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if abs(c.size-size) < abs(best.size-size) {
			best = c
		}
	}
	return best, true
}

// neighbours returns same-directory, same-extension source files as a
// dictionary for a new file with no old version, capped in size.
func (ix *index) neighbours(name string, max int64) []loc {
	var out []loc
	var total int64
	ext := path.Ext(name)
	cands := ix.byDir[path.Dir(name)]
	sorted := append([]loc(nil), cands...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return (path.Ext(sorted[i].name) == ext) && (path.Ext(sorted[j].name) != ext)
	})
	for _, c := range sorted {
		if total+c.size > max {
			continue
		}
		out = append(out, c)
		total += c.size
	}
	return out
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

type countingReader struct {
	r    io.Reader
	n    int64
	keep bool
	kept bytes.Buffer
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.keep {
		c.kept.Write(p[:n])
	}
	return n, err
}

// task is one unit of output, produced in order.
type task struct {
	done chan struct{}
	buf  bytes.Buffer
	err  error
	kind int // for stats: statHeader, statCopy, statDelta, statLit
	in   int64
	// copy, when set, is a COPY the writer may merge with its neighbours.
	copy *loc
	// adiff is set when the op is an ADIFF.
	adiff bool
	// file is the file whose content the task carries (nil: headers and
	// the rest), for Stats.Costs.
	file *fileAcc
	// name is the file the task encodes (for traceTask).
	name string
	// release gives back the task's share of the pending bytes once it
	// is written.
	release func()
}

// hold is what a queued task holds until it is written: its chunk (in)
// or its ready bytes.
func (t *task) hold() int64 { return max(t.in, int64(t.buf.Len())) }

// pendingTasks bounds the tasks queued per job; pendingBytes bounds the
// input they hold: a chunk and 4 MiB per job (20 MiB at --jobs 2, less
// than the 2 chunks per job the queue could hold when its length was the
// bound).
const pendingTasks = 64

func pendingBytes(o EncodeOptions) int64 { return o.MaxChunk + int64(o.Jobs)*(4<<20) }

// traceTask, when set (by measurements), sees every task as it is written.
var traceTask func(name string, kind int, in int64, out int, adiff bool)

// Encode writes a patch that rebuilds the tar read from newTar out of
// sources. It reads newTar once, as a stream.
//
// A small layer (sources and new tar each at most SmallLayer bytes) is
// encoded two or three ways and the smallest patch is kept: file by file
// as below; whole, as one zstd frame compressed against all of the
// sources' bytes (the way zstd --patch-from works); and, in format 4, as
// an edit of the sources' entries (edit.go). For a few small edits a
// single stream wins: it pays for one zstd frame and one set of entropy
// tables, where the file-by-file patch pays for a frame per changed file
// and for the positions of the unchanged ones. Memory stays bounded by
// SmallLayer.
func Encode(ctx context.Context, w io.Writer, newTar io.Reader, sources []Source, o EncodeOptions) (Stats, error) {
	if o.FileByFile || !isSmall(sources) {
		return encode(ctx, w, newTar, sources, o)
	}
	head, err := io.ReadAll(io.LimitReader(newTar, SmallLayer+1))
	if err != nil {
		return Stats{}, fault.Errorf(fault.Env, "tarpatch: reading the new tar: %w", err)
	}
	if len(head) > SmallLayer {
		return encode(ctx, w, io.MultiReader(bytes.NewReader(head), newTar), sources, o)
	}
	var perFile bytes.Buffer
	st, err := encode(ctx, &perFile, bytes.NewReader(head), sources, o)
	if err != nil {
		return st, err
	}
	best := perFile.Bytes()
	whole, err := encodeWhole(head, sources, o.Level)
	if err != nil {
		return st, err
	}
	if o.Format == 0 || o.Format == 4 {
		edit, err := encodeEdit(head, sources, o.Level)
		if err != nil {
			return st, err
		}
		if len(edit) < len(whole) {
			whole = edit
		}
	}
	if len(whole) < len(best) {
		best = whole
		costs := st.Costs
		st = Stats{NewSize: int64(len(head)), Files: st.Files, Literals: st.Files, Whole: true}
		if costs != nil {
			st.Costs = costs.scaleWhole(int64(len(whole)))
		}
	}
	if _, err := w.Write(best); err != nil {
		return st, fault.Wrap(fault.Env, err)
	}
	st.PatchSize = int64(len(best))
	return st, nil
}

// encodeWhole encodes a small tar whole: wholeMagic and one zstd frame
// compressed against the concatenated sources.
func encodeWhole(tarBytes []byte, sources []Source, level zstd.EncoderLevel) ([]byte, error) {
	dict, err := streamDict(sources)
	if err != nil {
		return nil, err
	}
	if level == 0 {
		level = zstd.SpeedBestCompression
	}
	// No frame checksum: the caller checks the rebuilt tar against the
	// layer's diffID, a stronger check than zstd's 4 bytes of CRC.
	opts := []zstd.EOption{zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(streamWindow), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true)}
	if len(dict) > 0 {
		opts = append(opts, zstd.WithEncoderDictRaw(dictID, dict))
	}
	enc, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err)
	}
	defer enc.Close()
	return enc.EncodeAll(tarBytes, append([]byte(nil), wholeMagic...)), nil
}

// SmallLayer is the size up to which a layer is also encoded whole
// against its whole source.
const SmallLayer = 8 << 20

// isSmall reports whether the sources together fit SmallLayer: then the
// patch's shared stream is compressed against all of their bytes.
func isSmall(sources []Source) bool {
	var n int64
	for _, s := range sources {
		n += s.Size()
	}
	return n <= SmallLayer
}

// streamDict is the dictionary of the patch's shared stream, derived by
// encoder and decoder alike from the sources: their whole content when
// they are small, else their header blocks.
func streamDict(sources []Source) ([]byte, error) {
	if !isSmall(sources) {
		return headerDict(sources), nil
	}
	var dict []byte
	for _, s := range sources {
		start := len(dict)
		dict = append(dict, make([]byte, s.Size())...)
		if _, err := s.ReadAt(dict[start:], 0); err != nil && err != io.EOF {
			return nil, fault.Errorf(fault.Env, "tarpatch: reading a source: %w", err)
		}
	}
	return dict, nil
}

// streamWindow is the window of the shared stream: it spans the
// dictionary and a small layer.
const streamWindow = 32 << 20

// encode is Encode's file-by-file pass.
func encode(ctx context.Context, w io.Writer, newTar io.Reader, sources []Source, o EncodeOptions) (Stats, error) {
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Level == 0 {
		o.Level = zstd.SpeedBestCompression
	}
	if o.MaxChunk <= 0 {
		o.MaxChunk = 12 << 20
	}
	// A chunk must leave room for its dictionary in the window.
	o.MaxChunk = min(o.MaxChunk, dictWindow*3/8)
	var st Stats
	ix, err := buildIndex(ctx, sources)
	if err != nil {
		return st, err
	}
	encs, err := newEncoders(o.Level)
	if err != nil {
		return st, fault.Wrap(fault.Internal, err)
	}
	head := magic
	switch o.Format {
	case 0, 3, 4:
	case 2:
		head, encs.v2 = magicV2, true
	default:
		return st, fault.Errorf(fault.Internal, "tarpatch: no format %d (Encode writes 2, 3 or 4)", o.Format)
	}
	cw := &ctxio.CountingWriter{W: w}
	if _, err := cw.Write(head); err != nil {
		return st, fault.Wrap(fault.Env, err)
	}
	zopts := []zstd.EOption{zstd.WithEncoderLevel(o.Level), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(streamWindow), zstd.WithLowerEncoderMem(true)}
	hd, err := streamDict(sources)
	if err != nil {
		return st, err
	}
	if len(hd) > 0 {
		zopts = append(zopts, zstd.WithEncoderDictRaw(dictID, hd))
	}
	zw, err := zstd.NewWriter(cw, zopts...)
	if err != nil {
		return st, fault.Wrap(fault.Internal, err)
	}
	var costs *costAcc
	if o.FileCosts {
		costs = &costAcc{}
	}

	// Tasks are queued in output order and computed by workers; a writer
	// drains them in order. What bounds memory is the input the queued
	// tasks hold (pendingBytes), not their number: a large file at the
	// head of the queue must not leave the other workers idle once a few
	// small files behind it are done.
	queue := make(chan *task, pendingTasks*o.Jobs)
	pending := membudget.NewBudget(pendingBytes(o))
	var work errgroup.Group
	work.SetLimit(o.Jobs)
	writeErr := make(chan error, 1)
	go func() {
		var werr error
		// Adjacent copies (unchanged files and their headers, in the same
		// order as in the source) merge into one op.
		var pend *loc
		var pendFile *fileAcc // whose task began the pending COPY
		flush := func() {
			if pend != nil && werr == nil {
				b := []byte{opCopy}
				b = binary.AppendUvarint(b, uint64(pend.src))
				b = binary.AppendUvarint(b, uint64(pend.off))
				b = binary.AppendUvarint(b, uint64(pend.size))
				if _, err := zw.Write(b); err != nil {
					werr = fault.Wrap(fault.Env, err)
				}
				costs.op(pendFile, opCopy, int64(len(b)))
			}
			pend = nil
		}
		for t := range queue {
			<-t.done
			t.release()
			if traceTask != nil {
				traceTask(t.name, t.kind, t.in, t.buf.Len(), t.adiff)
			}
			if werr == nil && t.err != nil {
				werr = t.err
			}
			if c := t.copy; c != nil {
				if t.kind == statCopy {
					costs.copied(t.file, *c)
				}
				if pend != nil && pend.src == c.src && pend.off+pend.size == c.off {
					pend.size += c.size
				} else {
					flush()
					cc := *c
					pend, pendFile = &cc, t.file
				}
			} else {
				flush()
				if werr == nil {
					if _, err := zw.Write(t.buf.Bytes()); err != nil {
						werr = fault.Wrap(fault.Env, err)
					}
					if b := t.buf.Bytes(); len(b) > 0 {
						costs.op(t.file, b[0], int64(len(b)))
					}
				}
			}
			switch t.kind {
			case statCopy:
				st.Copied++
			case statDelta:
				st.Deltas++
				st.DeltaIn += t.in
				st.DeltaOut += int64(t.buf.Len())
				if t.adiff {
					st.ADiffs++
				}
			case statLit:
				st.Literals++
			}
		}
		flush()
		writeErr <- werr
	}()
	var cur *fileAcc // the file being encoded, for Stats.Costs
	emit := func(t *task) {
		t.file = cur
		t.release = pending.Take(t.hold())
		queue <- t
	}
	ready := func(kind int, b []byte) *task {
		t := &task{done: make(chan struct{}), kind: kind}
		t.buf.Write(b)
		close(t.done)
		return t
	}

	recent := &recentFiles{}
	cr := &countingReader{r: newTar, keep: true}
	tr := tar.NewReader(cr)
	// flushRaw emits the raw bytes gathered since the last file's data:
	// as a COPY when they equal the old header region of the same file,
	// else as a literal.
	flushRaw := func(name string) {
		if cr.kept.Len() == 0 {
			return
		}
		raw := cr.kept.Bytes()
		if l, ok := ix.hdrByPath[name]; ok && name != "" && l.size == int64(len(raw)) {
			old := make([]byte, l.size)
			if _, err := ix.sources[l.src].ReadAt(old, l.off); err == nil && bytes.Equal(old, raw) {
				t := &task{done: make(chan struct{}), kind: statHeader, copy: &loc{src: l.src, off: l.off, size: l.size}}
				close(t.done)
				emit(t)
				cr.kept.Reset()
				return
			}
		}
		emit(ready(statHeader, litOp(raw)))
		cr.kept.Reset()
	}
	var encErr error
	for encErr == nil {
		if err := ctx.Err(); err != nil {
			encErr = err
			break
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// Not a tar we understand from here on: the rest travels as
			// literal bytes, which is always exact.
			break
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 || isSparse(hdr) {
			continue // header (and any content) stays in the raw buffer
		}
		st.Files++
		name := cleanName(hdr.Name)
		flushRaw(name)
		if costs != nil {
			old, hasOld := ix.match(name, hdr.Size)
			cur = costs.file(name, hdr.Size, old, hasOld)
		}
		cr.keep = false
		encErr = encodeFile(ctx, tr, hdr.Size, cr.n, name, ix, o, encs, recent, emit, &work)
		cr.keep = true
		cur = nil
		if cr.kept.Len() > 1<<20 {
			flushRaw("")
		}
	}
	if encErr == nil {
		// The end-of-archive blocks and anything after them, verbatim.
		cr.keep = true
		if _, err := io.Copy(io.Discard, cr); err != nil {
			encErr = fault.Errorf(fault.Env, "tarpatch: reading the new tar: %w", err)
		}
		flushRaw("")
	}
	if encErr == nil {
		emit(ready(statHeader, []byte{opEnd}))
	}
	close(queue)
	werr := <-writeErr
	work.Wait()
	if encErr == nil {
		encErr = werr
	}
	if encErr != nil {
		zw.Close()
		return st, encErr
	}
	if err := zw.Close(); err != nil {
		return st, fault.Wrap(fault.Env, err)
	}
	st.NewSize = cr.n
	st.PatchSize = cw.N
	if costs != nil {
		st.Costs = costs.finish(int64(len(magic)), cw.N-int64(len(magic)))
	}
	return st, nil
}

func litOp(b []byte) []byte {
	out := make([]byte, 0, len(b)+11)
	out = append(out, opLit)
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
}

// recentFiles keeps the content of the last few files of the new tar, so
// a later file can use an earlier one as part of its dictionary (the
// decoder keeps the same bytes in its history window).
type recentFiles struct {
	files []recentFile
	total int
}

type recentFile struct {
	ext  string
	abs  int64
	data []byte
}

func (r *recentFiles) add(ext string, abs int64, data []byte) {
	r.files = append(r.files, recentFile{ext, abs, data})
	r.total += len(data)
	for len(r.files) > 0 && (r.total > HistSize/2 || r.files[0].abs < abs+int64(len(data))-HistSize) {
		r.total -= len(r.files[0].data)
		// Cleared, or the array behind the slice would keep the file's
		// bytes until the next append moves it.
		r.files[0] = recentFile{}
		r.files = r.files[1:]
	}
}

func abs64(x int64) int64 { return max(x, -x) }

// pick returns up to k recent files of the same extension, closest in
// size first, that together fit in room, in output order.
func (r *recentFiles) pick(ext string, size, abs, room int64, k int) []*recentFile {
	var cands []*recentFile
	for i := range r.files {
		f := &r.files[i]
		if f.ext == ext && f.abs >= abs-HistSize+1 && int64(len(f.data)) >= size/8 {
			cands = append(cands, f)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		return abs64(int64(len(cands[i].data))-size) < abs64(int64(len(cands[j].data))-size)
	})
	var out []*recentFile
	for _, c := range cands {
		if len(out) == k {
			break
		}
		if int64(len(c.data)) <= room {
			out = append(out, c)
			room -= int64(len(c.data))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].abs < out[j].abs })
	return out
}

// minChunkCopy is the least size of a source file bySize lists.
const minChunkCopy = 1 << 20

// sameChunk finds, among same (source files of the new file's size), one
// whose bytes at off equal buf.
func sameChunk(ix *index, same []loc, off int64, buf []byte, scratch *[]byte) (loc, bool, error) {
	for _, l := range same {
		if cap(*scratch) < len(buf) {
			*scratch = make([]byte, len(buf))
		}
		b := (*scratch)[:len(buf)]
		if _, err := ix.sources[l.src].ReadAt(b, l.off+off); err != nil && err != io.EOF {
			return loc{}, false, fault.Errorf(fault.Env, "tarpatch: reading source %d: %w", l.src, err)
		}
		if bytes.Equal(b, buf) {
			return l, true, nil
		}
	}
	return loc{}, false, nil
}

// encodeFile reads one regular file's content (starting at output offset
// abs) and queues its ops.
func encodeFile(ctx context.Context, r io.Reader, size, abs int64, name string, ix *index, o EncodeOptions, encs *encoders, recent *recentFiles, emit func(*task), work *errgroup.Group) error {
	var old loc
	var hasOld bool
	ext := path.Ext(name)
	histSrc := len(ix.sources)
	// A file larger than one chunk cannot be found by its hash before it
	// is read; a source file of its size (its old version first) may hold
	// it, and each chunk equal to the same region there is copied.
	var same []loc
	var scratch []byte
	for off := int64(0); off < size; off += o.MaxChunk {
		n := min(o.MaxChunk, size-off)
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return fault.Errorf(fault.Integrity, "tarpatch: reading %s from the new tar: %w", name, err)
		}
		if off == 0 && size > o.MaxChunk {
			// The old version is picked on the first chunk (by path, or
			// by content); a multi-chunk file is looked for there first.
			old, hasOld = ix.pick(name, size, buf)
			if hasOld && old.size == size {
				same = append(same, old)
			}
			same = append(same, ix.bySize[size]...)
		}
		if l, ok, err := sameChunk(ix, same, off, buf, &scratch); err != nil {
			return err
		} else if ok {
			t := &task{done: make(chan struct{}), kind: statCopy, copy: &loc{src: l.src, off: l.off + off, size: n}}
			close(t.done)
			emit(t)
			continue
		}
		if n == size {
			if l, ok := ix.byHash[sha256.Sum256(buf)]; ok && l.size == size {
				t := &task{done: make(chan struct{}), kind: statCopy, copy: &loc{src: l.src, off: l.off, size: l.size, name: l.name}}
				close(t.done)
				emit(t)
				if size >= 4<<10 {
					recent.add(ext, abs, buf)
				}
				return nil
			}
		}
		if off == 0 && size <= o.MaxChunk {
			old, hasOld = ix.pick(name, size, buf)
		}
		var ranges []loc
		var pre []byte // history bytes leading the dictionary
		if hasOld {
			oldR := chunkDict(old, off, n, size, o.MaxChunk)
			// A single-chunk file may also draw on the previous file of
			// its kind: edits repeated across files are then paid once.
			if n == size {
				room := int64(dictWindow) - n - oldR.size
				for _, p := range recent.pick(ext, size, abs, room, 1) {
					r := loc{src: histSrc, off: p.abs, size: int64(len(p.data))}
					data := p.data
					// Bundles of the same code at another depth: the
					// recent file re-indented to match.
					if size >= reindentMin && !encs.v2 {
						if sh := indentShift(p.data, buf); sh != 0 {
							if shifted := reindented(p.data, sh); int64(len(shifted)) <= room {
								r.shift, data = sh, shifted
							}
						}
					}
					ranges = append(ranges, r)
					pre = append(pre, data...)
				}
			}
			ranges = append(ranges, oldR)
		} else if n <= 4<<20 {
			ranges = ix.neighbours(name, dictWindow-(4<<20))
		}
		t := &task{done: make(chan struct{}), kind: statLit, in: n, name: name}
		emit(t)
		chunk, pre := buf, pre
		weight := n + int64(len(pre))
		for _, r := range ranges {
			weight += r.size
		}
		if len(ranges) > 0 && weight >= smallDict && o.Level >= zstd.SpeedBestCompression {
			// Its dictionary encoder is at the best level (withDict).
			weight += membudget.BestTables
		}
		run := func() {
			defer close(t.done)
			defer o.Workers.Take(weight)()
			defer fault.Recover(&t.err)
			if len(ranges) == 0 {
				t.buf.Write(litOp(chunk))
				return
			}
			rest, err := readRanges(ix, ranges[len(ranges)-1:])
			if err != nil {
				t.err = err
				return
			}
			dict := append(append([]byte(nil), pre...), rest...)
			// With an old version, MATCH first: it is cheap and wins on
			// text. Only when it leaves much behind (machine code) is the
			// slower DELTA tried too; the smaller one is kept.
			var enc []byte
			cost := 0
			if hasOld {
				if enc, cost, err = matchOp(ranges, dict, chunk, encs); err != nil {
					t.err = err
					return
				}
			}
			// An ELF file whole in one chunk with zlib-compressed sections
			// (Go's DWARF): ADIFF on the expanded forms (see elfz.go). When
			// that leaves little (1/16), the slower candidates are not
			// tried: they cannot come close.
			if hasOld && adiffEnabled && xadiffEnabled && n == size && (enc == nil || cost > len(chunk)/64) {
				x, err := xadiffOp(ranges, dict, chunk, len(pre), encs)
				if err != nil {
					t.err = err
					return
				}
				if x != nil && (enc == nil || len(x) < cost) {
					enc, cost = x, len(x)
					t.adiff = true
				}
			}
			if enc == nil || cost > len(chunk)/64 && !(t.adiff && cost <= len(chunk)/16) {
				d, err := deltaOp(ranges, dict, chunk, encs)
				if err != nil {
					t.err = err
					return
				}
				if enc == nil || len(d) < cost {
					enc, cost, t.adiff = d, len(d), false
				}
				// Against an old version, bsdiff's approximate copies too
				// (see adiff.go): best on rebuilt machine code.
				if hasOld && adiffEnabled {
					a, err := adiffOp(ranges, dict, chunk, encs)
					if err != nil {
						t.err = err
						return
					}
					if len(a) < cost {
						enc, cost, t.adiff = a, len(a), true
					}
				}
			}
			// A dictionary that does not help is dropped: plain literals
			// then compress in the shared stream.
			if !hasOld && cost > len(chunk)/2 && cost > plainSize(chunk, encs) {
				t.buf.Write(litOp(chunk))
				return
			}
			t.kind = statDelta
			t.buf.Write(enc)
		}
		work.Go(func() error { run(); return nil }) // t carries its own error
		if n == size && size >= 4<<10 {
			recent.add(ext, abs, buf)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// chunkDict picks the region of the old file that corresponds to the new
// chunk at off: the whole old file when it fits the dictionary window next
// to the chunk, else the proportional position widened by a margin.
func chunkDict(old loc, off, n, newSize, maxChunk int64) loc {
	room := int64(dictWindow) - n
	if old.size <= room {
		return old
	}
	start := old.size * off / max(newSize, 1)
	lo := max(0, start-(room-n)/2)
	hi := min(old.size, lo+room)
	lo = max(0, hi-room)
	return loc{src: old.src, off: old.off + lo, size: hi - lo, name: old.name}
}

// appendRanges appends a range list in the current format.
func appendRanges(b []byte, ranges []loc) []byte { return appendRangesIn(b, ranges, true) }

// appendRanges appends a range list in the format the encoding writes.
func (e *encoders) appendRanges(b []byte, ranges []loc) []byte {
	return appendRangesIn(b, ranges, !e.v2)
}

func appendRangesIn(b []byte, ranges []loc, shifts bool) []byte {
	b = binary.AppendUvarint(b, uint64(len(ranges)))
	for _, r := range ranges {
		b = binary.AppendUvarint(b, uint64(r.src))
		b = binary.AppendUvarint(b, uint64(r.off))
		b = binary.AppendUvarint(b, uint64(r.size))
		if shifts {
			b = binary.AppendVarint(b, int64(r.shift))
		}
	}
	return b
}

// reindentMin is the smallest file for which a re-indented recent file is
// looked for.
const reindentMin = 16 << 10

// readRanges assembles a dictionary from source ranges.
func readRanges(ix *index, ranges []loc) ([]byte, error) {
	var dict []byte
	for _, r := range ranges {
		start := len(dict)
		dict = append(dict, make([]byte, r.size)...)
		if _, err := ix.sources[r.src].ReadAt(dict[start:], r.off); err != nil {
			return nil, fault.Errorf(fault.Env, "tarpatch: reading source %d: %w", r.src, err)
		}
	}
	return dict, nil
}

// encoders holds the zstd encoders of one Encode call: one shared
// encoder without dictionary (EncodeAll is safe for concurrent use), and
// a fresh one per dictionary, sized to it.
type encoders struct {
	level zstd.EncoderLevel
	plain *zstd.Encoder
	// v2 writes format diffah-tar/2 (EncodeOptions.Format).
	v2 bool
}

// smallDict is the dictionary + data size below which the cheaper zstd
// level is used for dictionary compression.
const smallDict = 4 << 20

// tinyDict is the size below which the default level is used.
const tinyDict = 256 << 10

// dictWindow bounds dictionary + data for one DELTA or MATCH literal
// section (8 MiB chunks against at most 12 MiB of old file).
const dictWindow = 32 << 20

func newEncoders(level zstd.EncoderLevel) (*encoders, error) {
	plain, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	return &encoders{level: level, plain: plain}, nil
}

// withDict compresses data against a raw dictionary.
func (e *encoders) withDict(dict, data []byte) ([]byte, error) {
	if len(dict) == 0 {
		return e.plain.EncodeAll(data, nil), nil
	}
	if len(dict)+len(data) > dictWindow {
		return nil, fmt.Errorf("tarpatch: dictionary of %d bytes and %d bytes of data exceed the %d-byte window", len(dict), len(data), dictWindow)
	}
	window := 1 << 20
	for window < len(dict)+len(data) {
		window <<= 1
	}
	// klauspost's best level clears and fills 4M-entry match tables on
	// every encoder, which costs far more than compressing a small file;
	// below smallDict the next level down (2^19-entry tables) is used.
	level := e.level
	if len(dict)+len(data) < smallDict && level > zstd.SpeedBetterCompression {
		level = zstd.SpeedBetterCompression
	}
	if len(dict)+len(data) < tinyDict && level > zstd.SpeedDefault {
		level = zstd.SpeedDefault
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderDictRaw(dictID, dict), zstd.WithWindowSize(window))
	if err != nil {
		return nil, fmt.Errorf("tarpatch: delta encoder: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil), nil
}

func deltaOp(ranges []loc, dict, data []byte, enc *encoders) ([]byte, error) {
	payload, err := enc.withDict(dict, data)
	if err != nil {
		return nil, err
	}
	b := enc.appendRanges([]byte{opDelta}, ranges)
	b = binary.AppendUvarint(b, uint64(len(data)))
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...), nil
}

// plainSize estimates what data costs as a literal.
func plainSize(data []byte, enc *encoders) int {
	return len(enc.plain.EncodeAll(data, nil))
}

const (
	statHeader = iota
	statCopy
	statDelta
	statLit
)
