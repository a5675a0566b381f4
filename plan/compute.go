package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/internal/progress"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/tarpatch"
)

// Input is the target image and where it came from.
type Input struct {
	Ref         string
	Platform    string
	IndexDigest digest.Digest
	Image       v1.Image
}

// BaselineInput is what the producer knows of the consumer's image: the
// image itself, or only its manifest (--baseline-manifest), in which case
// blobs can be reused but no patch can be computed.
type BaselineInput struct {
	Ref          string
	ManifestFile string
	Image        v1.Image
	RawManifest  []byte
}

// Options tune Compute.
type Options struct {
	Name       string
	IntraLayer string // IntraAuto (default) or IntraOff
	Jobs       int    // parallel recipe detection; default runtime.NumCPU()
	// MaxSources caps the baseline layers one patch may read (default 4).
	MaxSources int
	// ReusedRecipes is ReusedRecipesAuto (default: record the compression
	// recipe of every reused layer, reading each once) or ReusedRecipesOff.
	ReusedRecipes string
	Log           *slog.Logger
	// OnDetect, when set, is called after each layer's compressor
	// detection with how many of how many are done (for progress).
	OnDetect func(done, total int)
	// OnDetectRead, when set, is called with the size of each read of a
	// layer blob while its compressor is detected (for progress; from
	// several goroutines). Detection reads a blob more than once — a
	// prefix trial, the sync-point search, a full check — so the sum
	// can pass the blobs' size.
	OnDetectRead func(n int64)
}

// Compute plans the delta from baseline to target. baseline may be nil:
// then everything ships.
func Compute(ctx context.Context, target Input, baseline *BaselineInput, o Options) (*Plan, error) {
	if o.IntraLayer == "" {
		o.IntraLayer = IntraAuto
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.MaxSources <= 0 {
		o.MaxSources = 4
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if !sidecar.ValidName(o.Name) {
		return nil, fault.Errorf(fault.Usage, "plan: image name %q is not valid: use letters, digits and ._/:@- (set it with --name)", o.Name)
	}
	raw, err := target.Image.RawManifest()
	if err != nil {
		return nil, fault.Errorf(fault.Env, "plan: reading the manifest of %s: %w", target.Ref, err)
	}
	mt, err := target.Image.MediaType()
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "plan: media type of %s: %w", target.Ref, err)
	}
	man, err := target.Image.Manifest()
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "plan: parsing the manifest of %s: %w", target.Ref, err)
	}
	cf, err := target.Image.ConfigFile()
	if err != nil {
		return nil, fault.Errorf(fault.Integrity, "plan: reading the config of %s: %w", target.Ref, err)
	}
	if len(cf.RootFS.DiffIDs) != len(man.Layers) {
		return nil, fault.Errorf(fault.Integrity, "plan: %s has %d layers but its config lists %d diffIDs", target.Ref, len(man.Layers), len(cf.RootFS.DiffIDs))
	}
	p := &Plan{
		Kind:       Kind,
		Version:    fmt.Sprintf("%d.%d", Major, minorBase),
		Name:       o.Name,
		IntraLayer: o.IntraLayer,
		Target: Target{
			Ref:         target.Ref,
			Platform:    target.Platform,
			IndexDigest: target.IndexDigest,
			Manifest:    sidecar.Descriptor{MediaType: string(mt), Digest: digest.FromBytes(raw), Size: int64(len(raw))},
			Raw:         raw,
			Config:      imgref.Digest(man.Config.Digest),
		},
	}
	have := map[digest.Digest]bool{}
	if baseline != nil {
		b, err := describeBaseline(baseline)
		if err != nil {
			return nil, err
		}
		p.Baseline = b
		have[b.Config] = true
		for _, l := range b.Layers {
			have[l.Digest] = true
		}
	}
	p.Blobs = append(p.Blobs, Blob{Descriptor: p.Target.Manifest, Role: sidecar.RoleManifest,
		Decision: Decision{Action: sidecar.Ship, Reason: "the manifest always travels", ReasonCode: sidecar.ReasonManifest}})
	cfg := Blob{Descriptor: desc(man.Config), Role: sidecar.RoleConfig}
	decide(&cfg, have)
	p.Blobs = append(p.Blobs, cfg)
	for i, l := range man.Layers {
		b := Blob{Descriptor: desc(l), Role: sidecar.RoleLayer, DiffID: imgref.Digest(cf.RootFS.DiffIDs[i])}
		decide(&b, have)
		p.Blobs = append(p.Blobs, b)
	}
	if err := reuseRecipes(ctx, p, target, baseline, o); err != nil {
		return nil, err
	}
	if p.Baseline != nil && o.IntraLayer == IntraAuto {
		if baseline.Image == nil {
			for i := range p.Blobs {
				if p.Blobs[i].Role == sidecar.RoleLayer && p.Blobs[i].Action == sidecar.Ship {
					p.Blobs[i].Reason = "not in the baseline; no patch: only the baseline manifest is known (--baseline-manifest)"
					p.Blobs[i].ReasonCode = sidecar.ReasonBaselineManifestOnly
				}
			}
		} else if err := planPatches(ctx, p, target.Image, o); err != nil {
			return nil, err
		}
	}
	p.Sum()
	p.setVersion()
	return p, nil
}

func desc(d v1.Descriptor) sidecar.Descriptor {
	return sidecar.Descriptor{MediaType: string(d.MediaType), Digest: imgref.Digest(d.Digest), Size: d.Size}
}

func decide(b *Blob, have map[digest.Digest]bool) {
	if have[b.Digest] {
		b.Action, b.Reason, b.ReasonCode = sidecar.Reuse, "present in the baseline", sidecar.ReasonInBaseline
		return
	}
	b.Action, b.Reason, b.ReasonCode = sidecar.Ship, "not in the baseline", sidecar.ReasonNotInBaseline
}

func describeBaseline(in *BaselineInput) (*Baseline, error) {
	b := &Baseline{Ref: in.Ref, ManifestFile: in.ManifestFile}
	name := in.Ref
	if name == "" {
		name = in.ManifestFile
	}
	raw := in.RawManifest
	if in.Image != nil {
		var err error
		if raw, err = in.Image.RawManifest(); err != nil {
			return nil, fault.Errorf(fault.Env, "plan: reading the manifest of baseline %s: %w", name, err)
		}
	}
	var man v1.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, fault.Errorf(fault.Usage, "plan: baseline manifest %s is not an image manifest: %w", name, err)
	}
	if man.Config.Digest.Hex == "" {
		return nil, fault.Errorf(fault.Usage, "plan: baseline manifest %s has no config: is it an index? pick one platform's manifest", name)
	}
	b.ManifestDigest = digest.FromBytes(raw)
	b.Config = imgref.Digest(man.Config.Digest)
	var diffIDs []v1.Hash
	if in.Image != nil {
		cf, err := in.Image.ConfigFile()
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "plan: reading the config of baseline %s: %w", name, err)
		}
		diffIDs = cf.RootFS.DiffIDs
		if len(diffIDs) != len(man.Layers) {
			return nil, fault.Errorf(fault.Integrity, "plan: baseline %s has %d layers but its config lists %d diffIDs", name, len(man.Layers), len(diffIDs))
		}
	}
	for i, l := range man.Layers {
		s := sidecar.Source{Descriptor: desc(l)}
		if diffIDs != nil {
			s.DiffID = imgref.Digest(diffIDs[i])
		}
		if err := layout.CheckDigest(s.Digest, fmt.Sprintf("plan: baseline %s layer %d", name, i)); err != nil {
			return nil, err
		}
		b.Layers = append(b.Layers, s)
	}
	return b, nil
}

// Patchable reports whether a layer media type is a tar diffah can patch.
func Patchable(mediaType string) bool { return patchable(mediaType) }

func patchable(mediaType string) bool {
	switch {
	case strings.HasSuffix(mediaType, "nondistributable.v1.tar+gzip"), strings.Contains(mediaType, "foreign"):
		return false
	case strings.HasSuffix(mediaType, ".tar"), strings.HasSuffix(mediaType, ".tar.gzip"), strings.HasSuffix(mediaType, ".tar+gzip"),
		strings.HasSuffix(mediaType, ".tar+zstd"), strings.HasSuffix(mediaType, ".tar.zstd"):
		return true
	}
	return false
}

// planPatches decides, for every shipped layer, whether a patch can rebuild
// it: the compressor must be reproducible and the baseline must have layers
// to patch from. pack makes the final call on size.
func planPatches(ctx context.Context, p *Plan, img v1.Image, o Options) error {
	type job struct {
		i     int
		layer v1.Layer
	}
	var jobs []job
	for i := 2; i < len(p.Blobs); i++ {
		b := &p.Blobs[i]
		if b.Action != sidecar.Ship {
			continue
		}
		if !patchable(b.MediaType) {
			b.Reason = fmt.Sprintf("not in the baseline; media type %s is not a patchable tar", b.MediaType)
			b.ReasonCode = sidecar.ReasonNotPatchable
			continue
		}
		srcs := chooseSources(p, i-2, o.MaxSources)
		if len(srcs) == 0 {
			b.Reason = "not in the baseline; the baseline has no layer to patch from"
			b.ReasonCode = sidecar.ReasonNoPatchSource
			continue
		}
		l, err := targetLayer(img, p, b)
		if err != nil {
			return err
		}
		b.Patch = &Patch{Codec: tarpatch.Codec, Sources: srcs}
		jobs = append(jobs, job{i, l})
	}
	// Detect recipes in parallel, each into its own slot; decide in
	// order, so the plan does not depend on the number of workers.
	type detected struct {
		rec recompress.Recipe
		err error
	}
	found := make([]detected, len(jobs))
	var g errgroup.Group
	g.SetLimit(o.Jobs)
	var mu sync.Mutex // orders OnDetect calls
	nDone := 0
	for k, j := range jobs {
		g.Go(func() (err error) {
			defer func() { found[k].err = err }()
			defer fault.Recover(&err)
			if err := ctx.Err(); err != nil {
				return err
			}
			// Sync points let resolve recompress the layer on every
			// core; without them it still resolves, serially. They are
			// sought first, for the candidate that passed the prefix
			// (what Detect almost always returns), on every job; when
			// their segments reproduce the whole blob, that is Detect's
			// full check, done in parallel, and its serial one is
			// skipped. The same recipe gives the same points whatever
			// the number of jobs.
			open := j.layer.Compressed
			if o.OnDetectRead != nil {
				open = progress.CountOpener(open, o.OnDetectRead)
			}
			early := &syncSearch{ctx: ctx, open: open, jobs: o.Jobs}
			found[k].rec, err = recompress.Detect(ctx, open, recompress.DetectOptions{Prove: early.prove})
			if o.OnDetect != nil {
				mu.Lock()
				nDone++
				o.OnDetect(nDone, len(jobs))
				mu.Unlock()
			}
			if err != nil {
				return err
			}
			rec, serr := early.result(found[k].rec)
			switch {
			case serr == nil:
				found[k].rec = rec
			case ctx.Err() != nil:
				return ctx.Err()
			default:
				o.Log.Info("no sync points: the layer will recompress serially", "layer", p.Blobs[j.i].Digest, "err", serr)
			}
			return nil
		})
	}
	g.Wait() // each task's error is its slot's
	var first error
	for k, j := range jobs {
		b := &p.Blobs[j.i]
		rec, err := found[k].rec, found[k].err
		switch {
		case err == nil:
			enc, merr := json.Marshal(rec)
			if merr != nil && first == nil {
				first = merr
			}
			b.Patch.Recipe = enc
			b.Action = sidecar.Patch
			b.Reason = fmt.Sprintf("not in the baseline; patch from %d baseline layer(s), recompressed as %s", len(b.Patch.Sources), rec)
			b.ReasonCode = sidecar.ReasonPatched
		case ctx.Err() != nil:
			if first == nil {
				first = ctx.Err()
			}
		case !errors.Is(err, recompress.ErrNotReproducible):
			// Reading the layer failed (network, wrong bytes): a
			// damaged or unreachable target, not a compressor
			// that cannot be replayed.
			if first == nil {
				first = fmt.Errorf("layer %s of %s: %w", b.Digest, p.Target.Ref, err)
			}
		default:
			o.Log.Info("compressor not reproducible: patching the compressed bytes", "layer", b.Digest, "err", err)
			planFloor(b, err, identify(jobs[k].layer))
		}
	}
	if first != nil {
		return fault.Wrap(fault.KindOf(first, fault.Env), fmt.Errorf("plan: %w", first))
	}
	return ctx.Err()
}

// syncSearch runs FindSyncPointsProving for Detect's prefix candidate
// (Detect's Prove), and keeps what it found for result.
type syncSearch struct {
	ctx  context.Context
	open func() (io.ReadCloser, error)
	jobs int
	ran  bool
	rec  recompress.Recipe // the candidate it ran for
	out  recompress.Recipe
	err  error
}

// prove is Detect's Prove. A search that fails proves nothing; result
// says why.
func (s *syncSearch) prove(r recompress.Recipe) (bool, error) {
	var proven bool
	s.ran, s.rec = true, r
	s.out, proven, s.err = recompress.FindSyncPointsProving(s.ctx, s.open, r, recompress.SyncOptions{Jobs: s.jobs})
	if err := s.ctx.Err(); err != nil {
		return false, err
	}
	return proven && s.err == nil, nil
}

// result is FindSyncPoints for rec: the search's when it ran for rec,
// else a search now.
func (s *syncSearch) result(rec recompress.Recipe) (recompress.Recipe, error) {
	if s.ran && reflect.DeepEqual(s.rec, rec) {
		return s.out, s.err
	}
	return recompress.FindSyncPoints(s.ctx, s.open, rec, recompress.SyncOptions{Jobs: s.jobs})
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// chooseSources picks baseline layers a patch for target layer idx may
// read: layers the target does not reuse (those are the ones that were
// replaced), nearest in position first, since an updated layer usually
// sits where its old version sat.
func chooseSources(p *Plan, idx, max int) []sidecar.Source {
	reused := map[digest.Digest]bool{}
	for _, b := range p.Blobs {
		if b.Action == sidecar.Reuse {
			reused[b.Digest] = true
		}
	}
	type cand struct {
		s    sidecar.Source
		dist int
	}
	var cands []cand
	seen := map[digest.Digest]bool{}
	for i, l := range p.Baseline.Layers {
		if reused[l.Digest] || seen[l.Digest] || l.DiffID == "" || !patchable(l.MediaType) {
			continue
		}
		seen[l.Digest] = true
		d := i - idx
		if d < 0 {
			d = -d
		}
		cands = append(cands, cand{l, d})
	}
	// Stable insertion sort by distance keeps ties in baseline order,
	// which keeps plans deterministic.
	for i := 1; i < len(cands); i++ {
		for j := i; j > 0 && cands[j].dist < cands[j-1].dist; j-- {
			cands[j], cands[j-1] = cands[j-1], cands[j]
		}
	}
	var out []sidecar.Source
	for _, c := range cands {
		if len(out) == max {
			break
		}
		out = append(out, c.s)
	}
	return out
}
