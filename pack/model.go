package pack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/deflatetok"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/units"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
)

// modelPrefix is how much of a layer's content the level search reads;
// a model form over a modelCap-th of the blob is given up (another
// encoder made it, its patch would not pay).
const (
	modelPrefix = 1 << 20
	modelCap    = 4
)

// modelPatch is the patch of a gzip layer made by a compressor of the
// zlib/gzip family (codec diffah-deflate-model/2): its tar as a tar
// patch, and its model form (deflatetok.EncodeModel: the matcher's
// parameters and only the tokens and headers the model mispredicts),
// which needs no baseline blob. nil when the blob is not gzip or does
// not fit the model (another encoder made it: the corrections would be
// more than a modelCap-th of the blob). family names the encoder found, for
// the layer's reason whatever patch travels: "zlib/gzip family, level
// N", "unknown deflate (why)", or "" when the blob is not gzip.
func (st *state) modelPatch(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob) (pl *payload, family string, err error) {
	pl, family, err = st.modelPatchOf(ctx, plans, p, target, b)
	if errors.Is(err, errNoModel) {
		return nil, "unknown deflate encoder (" + strings.TrimPrefix(err.Error(), errNoModel.Error()+": ") + ")", nil
	}
	return pl, family, err
}

// errNoModel wraps why a gzip layer does not fit the model.
var errNoModel = errors.New("no model")

func (st *state) modelPatchOf(ctx context.Context, plans []*plan.Plan, p *plan.Plan, target *imgref.Image, b plan.Blob) (*payload, string, error) {
	rc, err := targetBlob(p, target, b)
	if err != nil {
		return nil, "", err
	}
	form, err := st.temp()
	if err != nil {
		rc.Close()
		return nil, "", err
	}
	defer form.Close()
	err = deflatetok.Decode(ctx, form, rc)
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
	}
	rc.Close()
	if errors.Is(err, deflatetok.ErrNotGzip) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	formSize, err := form.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, "", fault.Errorf(fault.Env, "pack: %w", err)
	}
	// The level: the one whose matcher predicts the first blocks best.
	var prefix bytes.Buffer
	if err := st.inflated(p, target, b, func(r io.Reader) error {
		_, err := io.CopyN(&prefix, r, modelPrefix)
		if err == io.EOF {
			err = nil
		}
		return err
	}); err != nil {
		return nil, "", err
	}
	level, rate, err := deflatetok.FitParams(ctx, form, formSize, prefix.Bytes())
	if errors.Is(err, deflatetok.ErrNoModel) {
		st.o.Log.Info("no deflate model", "layer", b.Digest, "err", err)
		return nil, "", fmt.Errorf("%w: %v", errNoModel, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	mf, err := st.temp()
	if err != nil {
		return nil, "", err
	}
	defer mf.Close()
	var stats deflatetok.ModelStats
	err = st.inflated(p, target, b, func(r io.Reader) error {
		var err error
		stats, err = deflatetok.EncodeModel(ctx, mf, io.NewSectionReader(form, 0, formSize), r, deflatetok.Levels[level], b.Size/modelCap)
		return err
	})
	if errors.Is(err, deflatetok.ErrNoModel) {
		st.o.Log.Info("no deflate model", "layer", b.Digest, "level", deflatetok.LevelName(level), "err", err)
		return nil, "", fmt.Errorf("%w: the deflate model, at its best fit (%s), mispredicts %.1f%% of the tokens of the first blocks; %v", errNoModel, deflatetok.LevelName(level), 100*rate, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("pack: layer %s of %s: %w", b.Digest, p.Name, err)
	}
	mfSize, err := mf.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, "", fault.Errorf(fault.Env, "pack: %w", err)
	}
	// The model form and the content rebuild the blob: checked, since a
	// patch resolve could not turn back into the blob is worse than none.
	if err := st.checkModel(ctx, p, target, b, mf, mfSize); err != nil {
		return nil, "", err
	}
	s := b.Patch.Sources[0]
	tp, tpLen, tarSize, costs, err := st.sourceTarPatch(ctx, plans, p, target, b, s)
	if err != nil {
		return nil, "", err
	}
	defer tp.Close()
	f, err := st.temp()
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	out := io.MultiWriter(f, h)
	err = deflatetok.WriteModelPatchHeader(out, deflatetok.PatchHeader{FormSize: formSize, TarLen: tpLen})
	if err == nil {
		_, err = io.Copy(out, io.NewSectionReader(tp, 0, tpLen))
	}
	if err == nil {
		_, err = io.Copy(out, io.NewSectionReader(mf, 0, mfSize))
	}
	var n int64
	if err == nil {
		n, err = f.Seek(0, io.SeekCurrent)
	}
	if err != nil {
		f.Close()
		return nil, "", fault.Errorf(fault.Env, "pack: %w", err)
	}
	// Past 1% of tokens mispredicted, another encoder made it (libdeflate's
	// lazy levels come out near 6%): the model only predicts it best.
	family := fmt.Sprintf("%s (%.2f%% of tokens mispredicted on its first blocks)", familyName(level), 100*rate)
	if rate > 0.01 {
		family = fmt.Sprintf("unknown deflate encoder, predicted by the model of %s (%.2f%% of tokens mispredicted on its first blocks)", deflatetok.LevelName(level), 100*rate)
	}
	codec := sidecar.DeflateModelCodec
	if deflatetok.Levels[level].Family != deflatetok.FamilyZlib {
		codec = sidecar.DeflateModelCodecV3
	}
	note := fmt.Sprintf("%s; reconstruction data %s: %d corrections of %d tokens, %d of %d headers",
		family, units.Bytes(mfSize), stats.Corrections, stats.Tokens, stats.Headers, stats.Blocks)
	st.o.Log.Info("model patch computed", "image", p.Name, "layer", b.Digest, "blob", b.Size, "tarPatch", tpLen, "modelForm", mfSize, "patch", n, "level", deflatetok.LevelName(level), "corrections", stats.Corrections)
	return &payload{file: f, digest: digest.NewDigest(digest.SHA256, h), size: n, newSize: tarSize,
		codec: codec, sources: []sidecar.Source{s}, recipe: plan.BlobRecipe, note: note, modelData: mfSize, costs: costs}, family, nil
}

// familyName names the encoder family and level the model fit found:
// "zlib/gzip family, level 9", "libdeflate, level 6".
func familyName(level int) string {
	if level >= deflatetok.LibdeflateLevel {
		return fmt.Sprintf("libdeflate, level %d", level-deflatetok.LibdeflateLevel)
	}
	return fmt.Sprintf("zlib/gzip family, level %d", level)
}

// inflated runs use on the content of the target blob b, inflated as it
// is read.
func (st *state) inflated(p *plan.Plan, target *imgref.Image, b plan.Blob, use func(io.Reader) error) error {
	rc, err := targetBlob(p, target, b)
	if err != nil {
		return err
	}
	defer rc.Close()
	cr, cw := io.Pipe()
	go func() { cw.CloseWithError(deflatetok.Inflate(cw, rc)) }()
	defer cr.Close()
	return use(cr)
}

// checkModel rebuilds the blob from its model form and its content, as
// resolve does (deflatetok.RebuildModel), and compares it with the blob
// digest.
func (st *state) checkModel(ctx context.Context, p *plan.Plan, target *imgref.Image, b plan.Blob, mf io.ReaderAt, mfSize int64) error {
	return st.inflated(p, target, b, func(content io.Reader) error {
		return checkRebuilt(b, "model form", func(w io.Writer) error {
			return deflatetok.RebuildModel(ctx, w, io.NewSectionReader(mf, 0, mfSize), content, deflatetok.EncodeOptions{MaxOutput: b.Size})
		})
	})
}
