// Package recompress reproduces the compressor that made a layer blob. A
// patch rebuilds a layer's uncompressed tar; the image needs the
// compressed blob, byte for byte. That is possible only when the
// compressor and its settings can be replayed, so Detect tries the
// compressors real image builders use and records the one that matches as
// a Recipe, and Recipe.NewWriter replays it.
//
// Which producers use what (checked in their sources):
//   - go-containerregistry (crane, ko, many CI tools): compress/gzip at
//     BestSpeed by default, configurable levels.
//   - moby/docker and BuildKit (gzip): compress/gzip, default level; zstd
//     layers via klauspost/compress/zstd at its default level.
//   - containerd: compress/gzip (or klauspost pgzip when configured), zstd
//     via klauspost at SpeedDefault.
//   - containers/image (podman, skopeo, buildah): klauspost/pgzip at the
//     default level for gzip, klauspost zstd for zstd.
//
// Multi-member gzip streams, and blobs from compressors with no Go
// counterpart (the gzip and zstd CLIs, pigz), are not reproducible: such
// layers ship whole.
package recompress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/diffah/diffah/fault"
)

// Formats.
const (
	FormatGzip = "gzip"
	FormatZstd = "zstd"
	// FormatNone is an uncompressed layer: identity.
	FormatNone = "none"
)

// Implementations.
const (
	ImplGo        = "go"        // compress/gzip
	ImplKlauspost = "klauspost" // klauspost/compress/gzip or /zstd
	ImplPgzip     = "pgzip"     // klauspost/pgzip
)

// Recipe says how to compress a tar into the exact blob. Its JSON form is
// recorded in plans and sidecars: field names are stable.
type Recipe struct {
	Format string `json:"format"`
	Impl   string `json:"impl,omitempty"`
	Level  int    `json:"level,omitempty"`
	// Gzip header fields, copied from the target blob.
	Name    string `json:"name,omitempty"`
	Comment string `json:"comment,omitempty"`
	ModTime int64  `json:"modTime,omitempty"`
	OS      *byte  `json:"os,omitempty"`
	Extra   []byte `json:"extra,omitempty"`
	// Zstd encoder settings that change the output.
	Concurrency int  `json:"concurrency,omitempty"`
	NoCRC       bool `json:"noCRC,omitempty"`
	// Pgzip block settings.
	BlockSize int `json:"blockSize,omitempty"`
	Blocks    int `json:"blocks,omitempty"`
	// Sync lists where the deflate stream may be cut to compress its
	// segments in parallel (see sync.go; sidecar 1.3, plan 1.2).
	Sync []SyncPoint `json:"sync,omitempty"`
}

// Limits on recipe settings from untrusted media: what the real
// compressors use (see Candidates), so a recipe cannot make recompression
// allocate more than a few MiB per layer.
const (
	// MaxPgzipBlockSize is pgzip's default block size, the only one
	// Detect records; pgzip buffers about two blocks per block in flight.
	MaxPgzipBlockSize = 1 << 20
	// MaxPgzipBlocks is pgzip's default number of blocks in flight; the
	// output does not depend on it.
	MaxPgzipBlocks = 4
	// MaxZstdConcurrency bounds the recorded zstd concurrency. The output
	// does not depend on it (TestZstdConcurrencyIndependent), so NewWriter
	// always uses one encoder: each one at the best level holds tens of
	// MiB of match tables.
	MaxZstdConcurrency = 64
)

// ErrNotReproducible says no known compressor reproduces the blob.
var ErrNotReproducible = errors.New("no known compressor reproduces this blob")

// String names the recipe for people: "gzip/go/1".
func (r Recipe) String() string {
	switch r.Format {
	case FormatNone:
		return "none"
	case FormatZstd:
		s := fmt.Sprintf("zstd/%s/%d", r.Impl, r.Level)
		if r.Concurrency > 0 {
			s += fmt.Sprintf("/c%d", r.Concurrency)
		}
		if r.NoCRC {
			s += "/nocrc"
		}
		return s
	}
	return fmt.Sprintf("%s/%s/%d", r.Format, r.Impl, r.Level)
}

// Validate checks a recipe from untrusted media.
func (r Recipe) Validate() error {
	bad := func(f string, v any) error {
		return fault.Errorf(fault.Integrity, "recipe %s: %s %v is not supported by this diffah", r.Format, f, v)
	}
	if err := r.validateSync(); err != nil {
		return err
	}
	// Settings that belong to another format or implementation are
	// refused rather than ignored: a sidecar carrying them was not written
	// by this diffah, and ignoring them could hide a mismatch.
	gzipHeader := r.Name != "" || r.Comment != "" || r.ModTime != 0 || r.OS != nil || r.Extra != nil
	zstdSettings := r.Concurrency != 0 || r.NoCRC
	pgzipSettings := r.BlockSize != 0 || r.Blocks != 0
	switch r.Format {
	case FormatNone:
		if r.Impl != "" || r.Level != 0 || gzipHeader || zstdSettings || pgzipSettings {
			return bad("settings", "other than format")
		}
		return nil
	case FormatGzip:
		if zstdSettings {
			return bad("settings", "concurrency/noCRC")
		}
		if r.Impl != ImplPgzip && pgzipSettings {
			return bad("settings", "blockSize/blocks")
		}
		switch r.Impl {
		case ImplGo:
			if r.Level != gzip.HuffmanOnly && (r.Level < 1 || r.Level > 9) {
				return bad("level", r.Level)
			}
		case ImplKlauspost:
			if r.Level < kgzip.HuffmanOnly || r.Level > 9 || r.Level == 0 || r.Level == -1 {
				return bad("level", r.Level)
			}
		case ImplPgzip:
			if r.Level < 1 || r.Level > 9 || r.BlockSize < 1<<10 || r.BlockSize > MaxPgzipBlockSize || r.Blocks < 1 || r.Blocks > MaxPgzipBlocks {
				return bad("settings", fmt.Sprintf("level %d block %d×%d", r.Level, r.BlockSize, r.Blocks))
			}
		default:
			return bad("implementation", r.Impl)
		}
		if len(r.Name) > 1024 || len(r.Comment) > 1024 || len(r.Extra) > 65535 {
			return bad("header", "too large")
		}
		return nil
	case FormatZstd:
		if r.Impl != ImplKlauspost {
			return bad("implementation", r.Impl)
		}
		if gzipHeader || pgzipSettings {
			return bad("settings", "gzip header or blocks")
		}
		if r.Level < int(zstd.SpeedFastest) || r.Level > int(zstd.SpeedBestCompression) {
			return bad("level", r.Level)
		}
		if r.Concurrency < 0 || r.Concurrency > MaxZstdConcurrency {
			return bad("concurrency", r.Concurrency)
		}
		return nil
	}
	return bad("format", fmt.Sprintf("%q", r.Format))
}

// ParseRecipe decodes a recipe's JSON strictly: unknown fields and
// trailing data are refused, then the recipe is validated.
func ParseRecipe(data []byte) (Recipe, error) {
	// Refused before decoding, so hostile sync points cost no more
	// memory than the largest honest recipe.
	if len(data) > maxRecipeJSON {
		return Recipe{}, fault.Errorf(fault.Integrity, "recipe JSON: %d bytes, more than a recipe may have (%d)", len(data), maxRecipeJSON)
	}
	var r Recipe
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Recipe{}, fault.Errorf(fault.Integrity, "recipe JSON: %w", err)
	}
	if dec.More() {
		return Recipe{}, fault.Errorf(fault.Integrity, "recipe JSON: data after the recipe")
	}
	if err := r.Validate(); err != nil {
		return Recipe{}, err
	}
	return r, nil
}

// WriterMemory is about the most NewWriter's writer holds, for the
// process-wide memory budget (internal/membudget): measured peaks of the
// largest settings Validate accepts (TestRecipeWriterMemory) rounded up.
func (r Recipe) WriterMemory() int64 {
	switch {
	case r.Format == FormatNone:
		return 0
	case r.Format == FormatZstd:
		return 64 << 20 // one encoder; the best level's tables dominate
	case r.Impl == ImplPgzip:
		return 32 << 20 // up to MaxPgzipBlocks blocks of MaxPgzipBlockSize
	}
	return 2 << 20 // one flate compressor
}

// NewWriter returns a WriteCloser compressing into w as the recipe says.
// Close writes the trailer.
func (r Recipe) NewWriter(w io.Writer) (io.WriteCloser, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	switch r.Format {
	case FormatNone:
		return nopWriteCloser{w}, nil
	case FormatZstd:
		// One encoder whatever r.Concurrency says: the output is the same
		// (TestZstdConcurrencyIndependent) and memory stays bounded.
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevel(r.Level)), zstd.WithEncoderCRC(!r.NoCRC), zstd.WithEncoderConcurrency(1))
	}
	// The gzip header is copied from the target, so recompression matches
	// it byte for byte; Go writers default to OS 255 (unknown).
	osByte := byte(255)
	if r.OS != nil {
		osByte = *r.OS
	}
	var mod time.Time
	if r.ModTime != 0 {
		mod = time.Unix(r.ModTime, 0)
	}
	switch r.Impl {
	case ImplGo:
		zw, err := gzip.NewWriterLevel(w, r.Level)
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "recipe %s: %w", r, err)
		}
		zw.Name, zw.Comment, zw.ModTime, zw.Extra, zw.OS = r.Name, r.Comment, mod, r.Extra, osByte
		return zw, nil
	case ImplKlauspost:
		zw, err := kgzip.NewWriterLevel(w, r.Level)
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "recipe %s: %w", r, err)
		}
		zw.Name, zw.Comment, zw.ModTime, zw.Extra, zw.OS = r.Name, r.Comment, mod, r.Extra, osByte
		return zw, nil
	case ImplPgzip:
		zw, err := pgzip.NewWriterLevel(w, r.Level)
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "recipe %s: %w", r, err)
		}
		if err := zw.SetConcurrency(r.BlockSize, r.Blocks); err != nil {
			return nil, fault.Errorf(fault.Integrity, "recipe %s: %w", r, err)
		}
		zw.Name, zw.Comment, zw.ModTime, zw.Extra, zw.OS = r.Name, r.Comment, mod, r.Extra, osByte
		return zw, nil
	}
	return nil, fault.Errorf(fault.Integrity, "recipe %s: unknown implementation", r)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// DetectOptions tune Detect.
type DetectOptions struct {
	// PrefixBytes of uncompressed data are tried first with every
	// candidate (default 1 MiB); only candidates that match so far are
	// verified on the whole blob.
	PrefixBytes int64
	// Candidates replaces the built-in list.
	Candidates []Recipe
	// PrefixOnly returns the first candidate that reproduces the prefix,
	// without recompressing the whole blob. For recipes that are only a
	// fallback and that the consumer verifies before naming a blob (a
	// reused layer's recipe, used when a baseline holds the layer only
	// uncompressed): a full recompression of every reused layer would
	// multiply plan time.
	PrefixOnly bool
	// Prove, when set, is called with the first candidate that
	// reproduces the prefix (not with PrefixOnly), before the whole blob
	// is recompressed; when it says that candidate reproduces the whole
	// blob (FindSyncPointsProving: segment by segment, on every job),
	// Detect returns it without its serial full check — the candidate
	// the check would have returned first. A caller keeps what Prove
	// found (the sync points).
	Prove func(Recipe) (bool, error)
}

// Candidates returns the recipes tried for a format, most common first.
func Candidates(format string) []Recipe {
	var out []Recipe
	switch format {
	case FormatGzip:
		for _, l := range []int{1, 6, 9, 2, 3, 4, 5, 7, 8, gzip.HuffmanOnly} {
			out = append(out, Recipe{Format: FormatGzip, Impl: ImplGo, Level: l})
		}
		// StatelessCompression is left out: its output depends on how the
		// input is chunked into writes, so no recipe can replay it.
		for _, l := range []int{6, 1, 9, 2, 3, 4, 5, 7, 8, kgzip.HuffmanOnly} {
			out = append(out, Recipe{Format: FormatGzip, Impl: ImplKlauspost, Level: l})
		}
		// pgzip's defaults (1 MiB blocks); its output depends on the
		// block size, not on the number of blocks in flight. Its default
		// level is klauspost/flate's DefaultCompression, which is 5, not 6.
		for _, l := range []int{5, 6, 1, 9} {
			out = append(out, Recipe{Format: FormatGzip, Impl: ImplPgzip, Level: l, BlockSize: 1 << 20, Blocks: 2})
		}
	case FormatZstd:
		// Concurrency and WithLowerEncoderMem were measured not to change
		// the output (see TestZstdConcurrencyIndependent); a non-default
		// window size does, but none of the producers above sets one.
		for _, l := range []zstd.EncoderLevel{zstd.SpeedDefault, zstd.SpeedFastest, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
			for _, crc := range []bool{true, false} {
				out = append(out, Recipe{Format: FormatZstd, Impl: ImplKlauspost, Level: int(l), NoCRC: !crc, Concurrency: 1})
			}
		}
	}
	return out
}

var (
	// gzipMagic and zstdMagic are in magic.go. Peek reads 4 bytes: enough to tell these apart from a tar, whose
	// first bytes are a file name.
	xzMagic    = []byte{0xfd, '7', 'z', 'X'}
	bzip2Magic = []byte{'B', 'Z', 'h'}
)

// Detect finds a recipe that reproduces the blob open returns. open is
// called several times (a prefix trial, then full verification).
func Detect(ctx context.Context, open func() (io.ReadCloser, error), o DetectOptions) (Recipe, error) {
	if o.PrefixBytes <= 0 {
		o.PrefixBytes = 1 << 20
	}
	format, hdr, err := sniff(open)
	if err != nil {
		return Recipe{}, err
	}
	if format == FormatNone {
		// An uncompressed layer needs no recompression; no check here:
		// resolve verifies the digest anyway.
		return Recipe{Format: FormatNone}, nil
	}
	cands := o.Candidates
	if cands == nil {
		cands = Candidates(format)
	}
	var tried []string
	for i := range cands {
		if cands[i].Format != format {
			continue
		}
		if hdr != nil {
			cands[i].Name, cands[i].Comment, cands[i].Extra = hdr.Name, hdr.Comment, hdr.Extra
			if !hdr.ModTime.IsZero() {
				cands[i].ModTime = hdr.ModTime.Unix()
			}
			if hdr.OS != 255 {
				osb := hdr.OS
				cands[i].OS = &osb
			}
		}
		tried = append(tried, cands[i].String())
	}
	survivors, err := trial(ctx, open, format, cands, o.PrefixBytes)
	if err != nil {
		return Recipe{}, err
	}
	if len(survivors) > 0 && o.PrefixOnly {
		return survivors[0], nil
	}
	if len(survivors) > 0 {
		if o.Prove != nil {
			proven, err := o.Prove(survivors[0])
			if err != nil {
				return Recipe{}, err
			}
			if proven {
				return survivors[0], nil
			}
		}
		ok, err := trial(ctx, open, format, survivors, -1)
		if err != nil {
			return Recipe{}, err
		}
		if len(ok) > 0 {
			return ok[0], nil
		}
	}
	return Recipe{}, fmt.Errorf("%w (tried %s)", ErrNotReproducible, strings.Join(tried, ", "))
}

// sniff tells the blob's format from its first bytes, with the gzip
// header of a gzip blob.
func sniff(open func() (io.ReadCloser, error)) (string, *gzip.Header, error) {
	rc, err := open()
	if err != nil {
		return "", nil, fault.Errorf(fault.Env, "recompress: %w", err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	magic, _ := br.Peek(4)
	switch {
	case IsGzip(magic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", nil, fault.Errorf(fault.Integrity, "recompress: gzip header: %w", err)
		}
		h := zr.Header
		return FormatGzip, &h, nil
	case IsZstd(magic):
		return FormatZstd, nil, nil
	case bytes.HasPrefix(magic, xzMagic), bytes.HasPrefix(magic, bzip2Magic):
		// Compressed by something with no replayable Go counterpart;
		// calling it uncompressed would hand callers compressed bytes
		// as a tar.
		return "", nil, fmt.Errorf("%w (xz or bzip2 blob; only gzip and zstd are replayed)", ErrNotReproducible)
	}
	return FormatNone, nil, nil
}

// Verify checks that r reproduces the blob open returns, with the same
// trial Detect runs: on the first prefix bytes of uncompressed data (1 MiB
// when prefix <= 0), or on the whole blob, end included, when it is
// shorter. It is how a recipe that did not come from Detect (a plan read
// back from a file) is checked cheaply before it is relied on. A mismatch
// is a fault.Integrity error naming the recipe and what differs.
//
// A compressor that writes from goroutines (pgzip, zstd with a
// concurrency other than 1) hands its output over when the scheduler
// lets it, so what a prefix shows of it is a matter of timing: such a
// recipe is verified on the whole blob, so that the verdict never
// depends on the machine.
func Verify(ctx context.Context, open func() (io.ReadCloser, error), r Recipe, prefix int64) error {
	if prefix <= 0 {
		prefix = 1 << 20
	}
	if r.Impl == ImplPgzip || r.Format == FormatZstd && r.Concurrency != 1 {
		prefix = -1
	}
	if err := r.Validate(); err != nil {
		return err
	}
	format, _, err := sniff(open)
	if err != nil {
		if errors.Is(err, ErrNotReproducible) {
			return fault.Errorf(fault.Integrity, "recipe %s: %w", r, err)
		}
		return err
	}
	if format != r.Format {
		return fault.Errorf(fault.Integrity, "recipe %s: the blob is %s, not %s", r, formatName(format), r.Format)
	}
	if format == FormatNone {
		return nil
	}
	ok, err := trial(ctx, open, format, []Recipe{r}, prefix)
	if err != nil {
		return err
	}
	if len(ok) == 0 {
		what := "the whole blob"
		if prefix >= 0 {
			what = fmt.Sprintf("its first %d uncompressed bytes", prefix)
		}
		return fault.Errorf(fault.Integrity, "recipe %s does not reproduce the blob (compared on %s)", r, what)
	}
	return nil
}

func formatName(f string) string {
	if f == FormatNone {
		return "not compressed (none)"
	}
	return f
}

// trial decompresses the blob once (up to limit bytes, or all of it when
// limit < 0) and feeds every candidate; a candidate survives while its
// output equals the blob. With a limit, output not yet emitted cannot be
// judged and survives.
func trial(ctx context.Context, open func() (io.ReadCloser, error), format string, cands []Recipe, limit int64) ([]Recipe, error) {
	src, err := open()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "recompress: %w", err)
	}
	defer src.Close()
	var plain io.Reader
	switch format {
	case FormatGzip:
		zr, err := gzip.NewReader(bufio.NewReaderSize(src, 1<<20))
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "recompress: %w", err)
		}
		// Only the first member is replayed: a second member after it
		// makes the blob multi-member, which no single writer
		// reproduces, and the end-of-blob check below rejects it.
		zr.Multistream(false)
		plain = zr
	case FormatZstd:
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<28))
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "recompress: %w", err)
		}
		defer zr.Close()
		plain = zr
	}
	// Every candidate compresses on its own goroutine while this one
	// decompresses ahead into a few recycled buffers: the decompression
	// overlaps the compressions, and no candidate waits for the slowest
	// one chunk by chunk. A candidate stops as soon as its output differs
	// from the blob (its comparer fails the write).
	var runs []*trialRun
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, r := range runs {
			if !r.closed {
				close(r.in)
				r.closed = true
			}
		}
		for _, r := range runs {
			<-r.done
		}
	}
	defer func() {
		stop()
		for _, r := range runs {
			if !r.wClosed {
				// Frees what the writer holds (pgzip's goroutines); its
				// output no longer matters.
				r.w.Close()
			}
			r.cmp.close()
		}
	}()
	const nbuf = 4
	free := make(chan *trialChunk, nbuf)
	for range nbuf {
		free <- &trialChunk{b: make([]byte, 256<<10)}
	}
	for _, c := range cands {
		bl, err := open()
		if err != nil {
			return nil, fault.Errorf(fault.Env, "recompress: %w", err)
		}
		cmp := &comparer{blob: bufio.NewReaderSize(bl, 256<<10), closer: bl}
		w, err := c.NewWriter(cmp)
		if err != nil {
			cmp.close()
			continue
		}
		r := &trialRun{r: c, cmp: cmp, w: w, in: make(chan *trialChunk, nbuf), done: make(chan struct{})}
		runs = append(runs, r)
		go r.loop(free)
	}
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := <-free
		n, rerr := plain.Read(c.b)
		if n > 0 {
			done += int64(n)
			var alive []*trialRun
			for _, r := range runs {
				if r.closed {
					continue
				}
				if r.dead.Load() {
					close(r.in)
					r.closed = true
					continue
				}
				alive = append(alive, r)
			}
			if len(alive) == 0 {
				free <- c
				return trialPanic(runs)
			}
			c.n = n
			c.refs.Store(int32(len(alive)))
			for _, r := range alive {
				r.in <- c
			}
		} else {
			free <- c
		}
		if limit >= 0 && done >= limit {
			stop()
			if err := trialPanicErr(runs); err != nil {
				return nil, err
			}
			var out []Recipe
			for _, r := range runs {
				if !r.cmp.bad.Load() {
					out = append(out, r.r)
				}
			}
			return out, nil
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, fault.Errorf(fault.Integrity, "recompress: decompressing: %w", rerr)
		}
	}
	stop()
	if err := trialPanicErr(runs); err != nil {
		return nil, err
	}
	var out []Recipe
	for _, r := range runs {
		if r.cmp.bad.Load() {
			continue
		}
		r.wClosed = true
		if err := r.w.Close(); err != nil || r.cmp.bad.Load() {
			continue
		}
		// The blob must end exactly where the output ends.
		if _, err := r.cmp.blob.ReadByte(); err != io.EOF {
			continue
		}
		out = append(out, r.r)
	}
	if limit < 0 && len(out) == 0 && done == 0 {
		return nil, nil
	}
	return out, nil
}

// trialChunk is decompressed data shared by the candidates of a trial;
// the last one to have compressed it gives it back.
type trialChunk struct {
	b    []byte
	n    int
	refs atomic.Int32
}

// trialRun is one candidate of a trial and its goroutine.
type trialRun struct {
	r      Recipe
	cmp    *comparer
	w      io.WriteCloser
	in     chan *trialChunk
	done   chan struct{}
	dead   atomic.Bool // set by loop: diverged (or panicked)
	err    error       // a panic, as an error
	closed bool        // in is closed (the decompressing side's)
	// wClosed: w was closed at the end of the trial.
	wClosed bool
}

func (r *trialRun) loop(free chan<- *trialChunk) {
	defer close(r.done)
	for c := range r.in {
		if !r.dead.Load() {
			r.write(c.b[:c.n])
		}
		if c.refs.Add(-1) == 0 {
			free <- c
		}
	}
}

func (r *trialRun) write(p []byte) {
	defer func() {
		if r.err != nil {
			r.dead.Store(true)
		}
	}()
	defer fault.Recover(&r.err)
	r.w.Write(p)
	if r.cmp.bad.Load() {
		r.dead.Store(true)
	}
}

// trialPanicErr is the first candidate panic of a finished trial.
func trialPanicErr(runs []*trialRun) error {
	for _, r := range runs {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// trialPanic ends a trial every candidate left: no survivor, or the
// panic one of them met.
func trialPanic(runs []*trialRun) ([]Recipe, error) {
	for _, r := range runs {
		<-r.done
	}
	return nil, trialPanicErr(runs)
}

// comparer checks compressor output against the blob as it is written.
type comparer struct {
	blob   *bufio.Reader
	closer io.Closer
	bad    atomic.Bool // written by the compressor (pgzip: from its goroutines)
	buf    []byte
}

func (c *comparer) Write(p []byte) (int, error) {
	if c.bad.Load() {
		return 0, errDiverged
	}
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	if _, err := io.ReadFull(c.blob, b); err != nil || !bytes.Equal(b, p) {
		c.bad.Store(true)
		// Failing the write stops the compressor: the rest of its
		// input would be compressed for nothing.
		return 0, errDiverged
	}
	return len(p), nil
}

// errDiverged fails a candidate's writes once its output differs from
// the blob.
var errDiverged = errors.New("recompress: output differs from the blob")

func (c *comparer) close() {
	if c.closer != nil {
		c.closer.Close()
		c.closer = nil
	}
}
