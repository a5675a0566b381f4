// Package pack streams delta archives. Write takes one or more plans,
// computes the patch payloads they call for, and writes a deterministic
// POSIX tar: diffah.json first, its signature next when signing, then every
// shipped blob and patch payload exactly once, in the order the sidecar
// lists them.
package pack

import (
	"archive/tar"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/diffah/diffah/blobpatch"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/internal/ctxio"
	"github.com/diffah/diffah/internal/membudget"
	"github.com/diffah/diffah/internal/progress"
	"github.com/diffah/diffah/internal/spool"
	"github.com/diffah/diffah/internal/verify"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/signature"
	"github.com/diffah/diffah/tarpatch"
)

// Compression of the archive as a whole.
const (
	CompressNone = "none"
	CompressZstd = "zstd"
	// CompressAuto (the default) is zstd for a bundle (more than one
	// image) and none for a single image. A bundle repeats, per image,
	// records that are nearly the same from one image to the next (its
	// sidecar entry, manifest, config, tar headers: about 8 kB each in a
	// fleet, where the patches themselves are a few hundred bytes after
	// the first image), which zstd takes out; a single image's archive is
	// mostly patches and blobs that are compressed already.
	CompressAuto = "auto"
)

// Options tune Write.
type Options struct {
	Compress string // CompressAuto (default), CompressNone or CompressZstd
	Jobs     int    // parallel patch computation; default runtime.NumCPU()
	// SignKey, when set, signs the sidecar.
	SignKey *ecdsa.PrivateKey
	// Image is how the images plans name are opened (platform, registry
	// TLS, retries, timeouts); each plan's own platform overrides Platform.
	Image imgref.Options
	// TempDir holds spooled layers and patch payloads ("" = system temp).
	TempDir string
	Tool    string
	Log     *slog.Logger
	// Progress, when set, receives a progress line (a terminal).
	Progress io.Writer
	// Independent keeps each image of a bundle to its own baseline: no
	// blob is reused from, and no layer patched against, another image's
	// baseline (see cross.go).
	Independent bool
}

// Report says what Write wrote.
type Report struct {
	Sidecar *sidecar.Sidecar
	// Bytes is the archive size (after whole-archive compression).
	Bytes int64
	// Patches lists each patch payload computed, shipped or not.
	Patches []PatchStat
}

// PatchStat is the outcome of one planned patch.
type PatchStat struct {
	Image     string
	Layer     digest.Digest
	BlobSize  int64
	PatchSize int64
	Used      bool // false: the patch was not smaller, the blob shipped
	Stats     tarpatch.Stats
	// Codec is the codec of the patch kept (tarpatch.Codec when empty);
	// FloorSize is the size of the compressed-bytes patch (see floor.go);
	// 0 when it was stopped, having grown to the tar patch's size.
	Codec     string
	FloorSize int64
}

type payload struct {
	newSize int64
	file    *os.File
	digest  digest.Digest
	size    int64
	// codec, sources and recipe, when codec is set, replace the plan's:
	// the compressed-bytes patch was kept (floor.go).
	codec   string
	sources []sidecar.Source
	recipe  []byte
	// costs, for a tar patch (and diffah-deflate/1, whose tar patch it
	// holds), says what each file of the layer costs (filecosts.go).
	costs *tarpatch.Costs
	// note says more about the patch kept, for the reason (the
	// compressor family a model patch found and what it costs).
	note string
	// modelData is the size of a model patch's reconstruction data.
	modelData int64
}

type source struct {
	img   *imgref.Image
	close func() error
}

// Write streams the archive for plans to w. Before the first byte, every
// plan is checked against the images it names (see plancheck.go): a plan
// that cannot produce its target is refused with a fault.Integrity error
// and nothing is written.
func Write(ctx context.Context, w io.Writer, plans []*plan.Plan, o Options) (*Report, error) {
	if len(plans) == 0 {
		return nil, fault.Errorf(fault.Usage, "pack: no plans on input; pipe `diffah plan` output or name plan files")
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	switch o.Compress {
	case "", CompressAuto:
		o.Compress = CompressNone
		if len(plans) > 1 {
			o.Compress = CompressZstd
		}
	case CompressNone, CompressZstd:
	default:
		return nil, fault.Errorf(fault.Usage, "pack: --compress %q: want auto, none or zstd", o.Compress)
	}
	names := map[string]bool{}
	for _, p := range plans {
		if names[p.Name] {
			return nil, fault.WithHint(fault.Errorf(fault.Usage, "pack: two plans name their image %q", p.Name),
				fault.Usage, "give each image its own name with `diffah plan --name`")
		}
		names[p.Name] = true
	}
	st := &state{o: o, cache: spool.NewCache(o.TempDir), images: map[string]*source{}, budget: membudget.NewBudget(EncodeBudget)}
	defer st.close()

	targets := make([]*imgref.Image, len(plans))
	for i, p := range plans {
		img, err := st.open(ctx, p.Target.Ref, p.Target.Platform)
		if err != nil {
			return nil, err
		}
		raw, err := img.RawManifest()
		if err != nil {
			return nil, fault.Errorf(fault.Env, "pack: reading manifest of %s: %w", p.Target.Ref, err)
		}
		if digest.FromBytes(raw) != p.Target.Manifest.Digest {
			return nil, fault.WithHint(fault.Errorf(fault.Integrity, "pack: plan %q: target %s is now %s, the plan was made for %s (.target.manifest.digest)",
				p.Name, p.Target.Ref, digest.FromBytes(raw), p.Target.Manifest.Digest), fault.Integrity, "the target changed since the plan, or the plan was edited: run `diffah plan` again")
		}
		targets[i] = img
	}
	if err := st.checkPlans(ctx, plans, targets); err != nil {
		return nil, err
	}
	if len(plans) > 1 && !o.Independent {
		var err error
		if plans, err = st.crossImage(ctx, plans, targets); err != nil {
			return nil, err
		}
	}
	if !o.Independent {
		if len(plans) == 1 {
			plans = copyPlans(plans)
		}
		if err := st.targetSources(ctx, plans, targets); err != nil {
			return nil, err
		}
	}
	rep := &Report{}
	payloads, err := st.patches(ctx, plans, targets, rep)
	if err != nil {
		return nil, err
	}
	if len(plans) > 1 && !o.Independent {
		if err := st.crossFallback(ctx, plans, targets, payloads, rep); err != nil {
			payloads.close()
			return nil, err
		}
	}
	sc, err := buildSidecar(plans, payloads, o.Tool)
	if err != nil {
		return nil, err
	}
	rep.Sidecar = sc
	scBytes, err := sc.Marshal()
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err)
	}
	var sig []byte
	if o.SignKey != nil {
		if sig, err = signature.Sign(scBytes, o.SignKey); err != nil {
			return nil, fault.Errorf(fault.Env, "pack: signing: %w", err)
		}
	}
	cw := &ctxio.CountingWriter{W: w}
	var out io.Writer = cw
	var zw *zstd.Encoder
	if o.Compress == CompressZstd {
		// One encoder goroutine keeps the output identical from run to run
		// whatever the machine.
		zw, err = zstd.NewWriter(cw, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return nil, fault.Wrap(fault.Internal, err)
		}
		out = zw
	}
	var total int64
	for _, e := range sc.Entries {
		total += e.Size
	}
	var bar *progress.Bar
	if o.Progress != nil {
		bar = progress.New(o.Progress, "pack: writing", total)
		defer bar.Done()
		out = bar.Writer(out)
	}
	tw := tar.NewWriter(out)
	if err := writeEntry(tw, sidecar.EntryName, int64(len(scBytes)), bytesReader(scBytes)); err != nil {
		return nil, err
	}
	if sig != nil {
		if err := writeEntry(tw, signature.EntryName, int64(len(sig)), bytesReader(sig)); err != nil {
			return nil, err
		}
	}
	src := blobSources(plans, targets)
	for _, e := range sc.Entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var r io.Reader
		if pl, ok := payloads.byDigest[e.Digest]; ok && e.Name == sidecar.PatchEntryName(e.Digest) {
			r = io.NewSectionReader(pl.file, 0, pl.size)
		} else {
			rc, err := src.open(e.Digest)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			r = rc
		}
		vr := verify.NewReader(r, e.Digest, e.Size, "pack: blob "+e.Digest.String())
		if err := writeEntry(tw, e.Name, e.Size, vr); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fault.Errorf(fault.Env, "pack: finishing the archive: %w", err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, fault.Errorf(fault.Env, "pack: finishing zstd: %w", err)
		}
	}
	rep.Bytes = cw.N
	return rep, nil
}

type state struct {
	o      Options
	cache  *spool.Cache
	mu     sync.Mutex
	images map[string]*source
	// perPatch is how many workers each patch computed at once gets (set
	// by patches; at least 1): its encoders split the layer across them.
	perPatch int
	// budget bounds what the encoders of every patch hold at once (see
	// EncodeBudget).
	budget *membudget.Budget
	// prints holds the tarpatch prints of baseline sources, by diffID
	// (fleet.go).
	prints map[digest.Digest]*tarpatch.Print
}

// EncodeBudget is how many bytes pack's encoders (tar patches and
// floors, on every worker) hold at once: a task takes its dictionary and
// data, and membudget.BestTables more for an encoder at the best level,
// whose match tables cost that whatever its input. So this, not --jobs,
// bounds pack's peak memory: more workers run more small tasks at once,
// and a large one runs alone. It fits one best-level encoder (a floor
// chunk with its dictionary, or a tar patch chunk with up to 32 MiB of
// dictionary and data) beside small ones, never two: two of them beside
// the tar patch's stream encoder, index and buffers took the 1.2 GB
// corpus layer past 512 MiB of RSS with --jobs 2 (see README).
const EncodeBudget = membudget.BestTables + 60<<20

// floorBesideMax is the largest blob whose floor is computed beside its
// tar patch; a larger one's comes after it, when needed (see patch).
// Below it, the two fill the cores together (the 347 MB blob of the
// corpus's 1.2 GB layer exports with --jobs 2 at 0.80x the wall time of
// --jobs 1). A variable for tests.
var floorBesideMax int64 = 512 << 20

// workers is how many workers one patch uses.
func (st *state) workers() int { return max(1, st.perPatch) }

func (st *state) open(ctx context.Context, ref, platform string) (*imgref.Image, error) {
	key := ref + "\x00" + platform
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.images[key]; ok {
		return s.img, nil
	}
	r, err := imgref.Parse(ref)
	if err != nil {
		return nil, err
	}
	opts := st.o.Image
	if platform != "" {
		opts.Platform = platform
	}
	img, err := imgref.Open(ctx, r, opts)
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	st.images[key] = &source{img: img, close: img.Close}
	return img, nil
}

func (st *state) close() {
	st.cache.Close()
	for _, s := range st.images {
		if s.close != nil {
			s.close()
		}
	}
}

type payloadSet struct {
	// byLayer maps a layer digest to the payload that rebuilds it;
	// absent means the layer ships.
	byLayer  map[string]*payload
	byDigest map[digest.Digest]*payload
	// unused says why a planned patch was not used.
	unused map[digest.Digest]unusedPatch
}

// unusedPatch is why a planned patch was not used: code for programs,
// text for people.
type unusedPatch struct {
	code sidecar.ReasonCode
	text string
}

var shippedByBundle = unusedPatch{sidecar.ReasonShippedByBundle, "another image of the bundle ships it whole"}

func (ps *payloadSet) close() {
	for _, p := range ps.byDigest {
		p.file.Close()
	}
}

// patches computes every planned patch on o.Jobs workers. A layer that
// some image ships whole anyway is not patched for the others: the
// archive carries it once.
func (st *state) patches(ctx context.Context, plans []*plan.Plan, targets []*imgref.Image, rep *Report) (*payloadSet, error) {
	shipped := map[digest.Digest]bool{}
	for _, p := range plans {
		for _, b := range p.Blobs {
			if b.Action == sidecar.Ship {
				shipped[b.Digest] = true
			}
		}
	}
	type job struct {
		pi   int
		blob plan.Blob
	}
	var jobs []job
	queued := map[digest.Digest]bool{}
	for pi, p := range plans {
		for _, b := range p.Blobs {
			if b.Action == sidecar.Patch && !shipped[b.Digest] && !queued[b.Digest] {
				queued[b.Digest] = true
				jobs = append(jobs, job{pi, b})
			}
		}
	}
	ps := &payloadSet{byLayer: map[string]*payload{}, byDigest: map[digest.Digest]*payload{}, unused: map[digest.Digest]unusedPatch{}}
	for d := range queued {
		if shipped[d] {
			ps.unused[d] = shippedByBundle
		}
	}
	for _, p := range plans {
		for _, b := range p.Blobs {
			if b.Action == sidecar.Patch && shipped[b.Digest] {
				ps.unused[b.Digest] = shippedByBundle
			}
		}
	}
	// Patches run one per worker; each patch encodes on its own with a
	// share of the jobs, so both cores work whether there is one big
	// layer or many small ones. Each task fills its own slot; results are
	// taken in order, so the archive does not depend on the workers.
	workers := min(st.o.Jobs, max(1, len(jobs)))
	st.perPatch = max(1, st.o.Jobs/workers)
	type result struct {
		pl   *payload
		stat PatchStat
		err  error
	}
	results := make([]result, len(jobs))
	var total int64
	for _, j := range jobs {
		total += j.blob.Size
	}
	bar := st.encodeBar(len(jobs), total)
	defer bar.Done()
	var g errgroup.Group
	g.SetLimit(workers)
	for k, j := range jobs {
		g.Go(func() (err error) {
			defer func() { results[k].err = err }()
			defer fault.Recover(&err)
			if err := ctx.Err(); err != nil {
				return err
			}
			lb := bar.Part(j.blob.Size)
			defer lb.Done()
			results[k].pl, results[k].stat, err = st.patch(ctx, plans, plans[j.pi], targets[j.pi], j.blob, lb)
			return err
		})
	}
	g.Wait() // each task's error is its slot's
	var first error
	for k, j := range jobs {
		pl, stat, err := results[k].pl, results[k].stat, results[k].err
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		rep.Patches = append(rep.Patches, stat)
		if stat.Used {
			ps.byDigest[pl.digest] = pl
			ps.byLayer[j.blob.Digest.String()] = pl
		} else {
			code := sidecar.ReasonPatchNotSmaller
			if j.blob.Patch.Codec == blobpatch.Codec {
				// The plan fell back to the compressed bytes because the
				// compressor cannot be reproduced: that is why it ships.
				code = sidecar.ReasonNotReproducible
			}
			ps.unused[j.blob.Digest] = unusedPatch{code, notSmaller(j.blob, stat)}
			pl.file.Close()
		}
	}
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		ps.close()
		return nil, first
	}
	sortPatchStats(rep.Patches)
	return ps, nil
}

// patch computes the patch of layer b; lb (nil: none) counts the
// layer's compressed bytes as the tar patch reads them.
func (st *state) patch(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob, lb *progress.Part) (*payload, PatchStat, error) {
	if err := checkCodec(p, b); err != nil {
		return nil, PatchStat{}, err
	}
	if b.Patch.Codec == blobpatch.Codec {
		return st.floorOnly(ctx, plans, p, target, b)
	}
	stat := PatchStat{Image: p.Name, Layer: b.Digest, BlobSize: b.Size}
	// The floor is computed beside the tar patch: the floor's chunks fill
	// the cores while the tar patch reads, or waits on its last large
	// file. Both take their tasks' memory from st.budget.
	workers := st.budget
	if b.Patch.Sources[0].Target != "" {
		// No baseline layer to patch the compressed bytes against: the
		// tar patch travels when it is smaller than the blob.
		return st.tarPayload(ctx, plans, p, target, b, stat, workers, lb)
	}
	if b.Patch.Codec == tarpatch.CodecBundle || b.Size > floorBesideMax {
		// A layer that also reads target layers was given them because
		// they hold much of it: its tar patch comes first, and the floor
		// only when that patch is not already tiny. Beside it, the floor
		// (one zstd pass at a high level over the blob, which a
		// cancellation stops only between chunks) was most of a fleet's
		// pack time. So for a very large layer: beside a tar patch whose
		// index grows with the layer's files, the floor's encoder and
		// chunks (about 125 MB) took a 10 GiB layer's export past
		// 512 MiB, and half its CPU time went to a floor then thrown
		// away (its tar patch was 1/1500 of the blob). The archive is
		// the same either way.
		tp, stat, err := st.tarPayload(ctx, plans, p, target, b, stat, workers, lb)
		if err != nil || tp.size <= b.Size/floorSkip {
			return tp, stat, err
		}
		// The floor stops once it is as large as the tar patch.
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := &floorStop{cancel: cancel}
		stop.at(tp.size)
		fl, err := st.floor(fctx, plans, p, target, b, workers, st.workers(), stop)
		if stop.lost() {
			if fl != nil {
				fl.file.Close()
			}
			return tp, stat, nil
		}
		return withFloor(b, tp, stat, nil, floorResult{fl, err})
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := &floorStop{cancel: cancel}
	floorc := make(chan floorResult, 1)
	go func() {
		var r floorResult
		defer func() { floorc <- r }()
		defer fault.Recover(&r.err)
		// One chunk at a time: beside the tar patch's stream, index and
		// encoders, a second best-level floor encoder (about 100 MiB:
		// match tables, their dictionary copies, window) took pack past
		// 512 MiB on the 1.2 GB corpus layer. The patch does not depend
		// on it.
		r.pl, r.err = st.floor(fctx, plans, p, target, b, workers, 1, stop)
	}()
	tp, stat, err := st.tarPayload(ctx, plans, p, target, b, stat, workers, lb)
	if err != nil {
		cancel()
	} else if tp.size <= b.Size/floorSkip {
		// The floor could save at most this little and costs a zstd pass
		// at a high level over the whole blob: in a fleet, where most
		// patches are a few bytes, it was most of pack's time.
		cancel()
	} else {
		stop.at(tp.size)
	}
	fl := <-floorc
	if err == nil && (tp.size <= b.Size/floorSkip || stop.lost()) {
		if fl.pl != nil {
			fl.pl.file.Close()
		}
		return tp, stat, nil
	}
	return withFloor(b, tp, stat, err, fl)
}

// tarPayload computes the tar patch of layer b (codec tarpatch).
func (st *state) tarPayload(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob, stat PatchStat, workers *membudget.Budget, lb *progress.Part) (*payload, PatchStat, error) {
	var srcs []tarpatch.Source
	for _, s := range b.Patch.Sources {
		image := s.Image
		if image == "" {
			image = p.Name
		}
		var f *spool.File
		var err error
		if s.Target != "" {
			f, err = st.targetFile(ctx, plans, s)
		} else {
			f, err = st.sourceFile(ctx, plans, image, s, p.Target.Platform)
		}
		if err != nil {
			return nil, stat, err
		}
		srcs = append(srcs, f)
	}
	_, rc, err := targetTar(p, target, b, lb.Reader)
	if err != nil {
		return nil, stat, err
	}
	defer rc.Close()
	f, err := atomicdir.Scratch(st.o.TempDir, "pack: patch of layer "+b.Digest.String())
	if err != nil {
		return nil, stat, err
	}
	h := sha256.New()
	diffID := sha256.New()
	dr := &ctxio.CountingReader{R: io.TeeReader(rc, diffID)}
	stats, err := tarpatch.Encode(ctx, io.MultiWriter(f, h), dr, srcs, tarpatch.EncodeOptions{Jobs: st.workers(), Workers: workers, FileCosts: true})
	if err != nil {
		f.Close()
		return nil, stat, fmt.Errorf("pack: patching layer %s of %s: %w", b.Digest, p.Name, err)
	}
	// Encode may stop reading at the end-of-archive marker; drain so the
	// diffID covers every byte.
	if _, err := io.Copy(io.Discard, dr); err != nil {
		f.Close()
		return nil, stat, fault.Errorf(fault.Env, "pack: reading layer %s: %w", b.Digest, err)
	}
	if got := digest.NewDigest(digest.SHA256, diffID); got != b.DiffID {
		f.Close()
		return nil, stat, fault.Errorf(fault.Integrity, "pack: layer %s of %s: uncompressed content is %s, its config says %s", b.Digest, p.Target.Ref, got, b.DiffID)
	}
	size, _ := f.Seek(0, io.SeekCurrent)
	stat.PatchSize, stat.Stats = size, stats
	stat.Used = size < b.Size
	st.o.Log.Info("patch computed", "image", p.Name, "layer", b.Digest, "blob", b.Size, "patch", size, "used", stat.Used)
	return &payload{file: f, digest: digest.NewDigest(digest.SHA256, h), size: size, newSize: dr.N, costs: stats.Costs}, stat, nil
}

// buildSidecar turns plans and computed payloads into the sidecar: each
// planned patch is settled (decision.go), and every entry appears once,
// in the order of first use.
func buildSidecar(plans []*plan.Plan, ps *payloadSet, tool string) (*sidecar.Sidecar, error) {
	sc := sidecar.New(tool)
	seen := map[string]bool{}
	add := func(name string, d digest.Digest, size int64) {
		if !seen[name] {
			seen[name] = true
			sc.Entries = append(sc.Entries, sidecar.Entry{Name: name, Size: size, Digest: d})
		}
	}
	for _, p := range plans {
		im := sidecar.Image{Name: p.Name, Target: sidecar.Target{
			Ref: p.Target.Ref, Platform: p.Target.Platform, IndexDigest: p.Target.IndexDigest, Manifest: p.Target.Manifest}}
		if p.Baseline != nil {
			ref := p.Baseline.Ref
			if ref == "" {
				ref = p.Baseline.ManifestFile
			}
			im.Baseline = &sidecar.Baseline{Ref: ref, ManifestDigest: p.Baseline.ManifestDigest}
		}
		for _, b := range p.Blobs {
			var pl *payload
			if b.Action == sidecar.Patch {
				var d plan.Decision
				d, pl = ps.settle(b)
				revise(&b, d)
			}
			var ref *sidecar.PatchRef
			if pl != nil {
				ref = &sidecar.PatchRef{PatchSpec: *b.Patch, Entry: sidecar.PatchEntryName(pl.digest), UncompressedSize: pl.newSize}
				add(ref.Entry, pl.digest, pl.size)
			}
			sb := sidecar.Blob{Descriptor: b.Descriptor, Role: b.Role, DiffID: b.DiffID, Decision: sidecar.WithPatch(b.Decision, ref)}
			sb.Reason = clip(sb.Reason)
			if pl != nil {
				sb.FileCosts = FileCosts(pl.costs, pl.size, sidecarFiles)
			}
			if sb.Action == sidecar.Ship {
				sb.Entry = sidecar.BlobEntryName(b.Digest)
				add(sb.Entry, b.Digest, b.Size)
			}
			im.Blobs = append(im.Blobs, sb)
		}
		sc.Images = append(sc.Images, im)
	}
	sc.SetVersion()
	return sc, sc.Validate()
}

// blobSet finds where to read each shipped blob.
type blobSet struct {
	raw    map[digest.Digest][]byte
	layers map[digest.Digest]v1.Layer
}

func blobSources(plans []*plan.Plan, targets []*imgref.Image) *blobSet {
	bs := &blobSet{raw: map[digest.Digest][]byte{}, layers: map[digest.Digest]v1.Layer{}}
	for i, p := range plans {
		bs.raw[p.Target.Manifest.Digest] = p.Target.Raw
		img := targets[i]
		if _, ok := bs.raw[p.Target.Config]; !ok {
			if cfg, err := img.RawConfigFile(); err == nil {
				bs.raw[p.Target.Config] = cfg
			}
		}
		for _, b := range p.Blobs[2:] {
			if _, ok := bs.layers[b.Digest]; !ok {
				if l, err := imgref.LayerByDigest(img, b.Digest); err == nil {
					bs.layers[b.Digest] = l
				}
			}
		}
	}
	return bs
}

func (bs *blobSet) open(d digest.Digest) (io.ReadCloser, error) {
	if b, ok := bs.raw[d]; ok {
		return io.NopCloser(bytesReader(b)), nil
	}
	if l, ok := bs.layers[d]; ok {
		rc, err := l.Compressed()
		if err != nil {
			return nil, fault.Errorf(fault.Env, "pack: reading blob %s: %w", d, err)
		}
		return rc, nil
	}
	return nil, fault.Errorf(fault.Env, "pack: blob %s is in no target image", d)
}

// epoch is the mtime of every entry: archives must not depend on when
// they were made.
var epoch = time.Unix(0, 0)

func writeEntry(tw *tar.Writer, name string, size int64, r io.Reader) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch, Format: tar.FormatPAX}
	if size < 1<<33-1 {
		hdr.Format = tar.FormatUSTAR
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fault.Errorf(fault.Env, "pack: writing %s: %w", name, err)
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return fmt.Errorf("pack: writing %s: %w", name, wrapEnv(err))
	}
	if n != size {
		return fault.Errorf(fault.Integrity, "pack: %s: %d bytes, expected %d", name, n, size)
	}
	return nil
}

func wrapEnv(err error) error {
	if fault.KindOf(err, 0) != 0 {
		return err
	}
	return fault.Wrap(fault.Env, err)
}

func clip(s string) string {
	if len(s) > 4096 {
		return s[:4096]
	}
	return s
}
