package deliver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/progress"
	"github.com/diffah/diffah/plan"
)

// PlanRequest names the images of a plan, as the flags give them.
type PlanRequest struct {
	Target string
	// One of Baseline (a reference), BaselineManifest (a manifest file)
	// or NoBaseline.
	Baseline         string
	BaselineManifest string
	NoBaseline       bool
	Platform         string
	// Name is the image's name in a bundle ("" = DefaultName(Target)).
	Name       string
	IntraLayer string
	// ReusedRecipes is plan.ReusedRecipesAuto (default) or ReusedRecipesOff.
	ReusedRecipes string
	Jobs          int
	Image         imgref.Options
	Log           *slog.Logger
	// Progress, when set, receives a status line per planning step (a
	// terminal).
	Progress io.Writer
}

// Plan opens the target and baseline and computes the plan.
func Plan(ctx context.Context, c PlanRequest) (*plan.Plan, error) {
	if c.Baseline == "" && c.BaselineManifest == "" && !c.NoBaseline {
		return nil, fault.WithHint(fault.Errorf(fault.Usage, "plan: no baseline: give --baseline REF or --baseline-manifest FILE (or --no-baseline for an image the site lacks)"),
			fault.Usage, "the baseline is the image the receiving site already holds")
	}
	opts := c.Image
	opts.Platform = c.Platform
	tref, err := imgref.Parse(c.Target)
	if err != nil {
		return nil, fmt.Errorf("--target: %w", err)
	}
	target, err := imgref.Open(ctx, tref, opts)
	if err != nil {
		return nil, fmt.Errorf("--target: %w", err)
	}
	defer target.Close()
	if err := CheckPlatform("--platform", c.Platform, c.Target, target); err != nil {
		return nil, err
	}
	var base *plan.BaselineInput
	if c.Baseline != "" {
		bref, err := imgref.Parse(c.Baseline)
		if err != nil {
			return nil, fmt.Errorf("--baseline: %w", err)
		}
		// The baseline must be the same platform as the target.
		bopts := opts
		if target.Platform != "" {
			bopts.Platform = target.Platform
		}
		bimg, err := imgref.Open(ctx, bref, bopts)
		if err != nil {
			return nil, fmt.Errorf("--baseline: %w", err)
		}
		defer bimg.Close()
		base = &plan.BaselineInput{Ref: c.Baseline, Image: bimg}
	} else if c.BaselineManifest != "" {
		raw, err := os.ReadFile(c.BaselineManifest)
		if err != nil {
			return nil, fault.Errorf(fault.Env, "--baseline-manifest: %w", err)
		}
		base = &plan.BaselineInput{ManifestFile: c.BaselineManifest, RawManifest: raw}
	}
	nm := c.Name
	if nm == "" {
		nm = DefaultName(tref)
	}
	ph := progress.NewPhase(c.Progress)
	defer ph.Done()
	ph.Set("plan: reading %s", c.Target)
	// Detection draws the bytes its trials read (a layer is read more
	// than once, so no total) and the layers done.
	po := plan.Options{Name: nm, IntraLayer: c.IntraLayer, ReusedRecipes: c.ReusedRecipes, Jobs: c.Jobs, Log: c.Log}
	if c.Progress != nil {
		bar := progress.New(c.Progress, "plan: detecting the compressors", 0)
		defer bar.Done()
		po.OnDetect = func(done, total int) {
			bar.SetLabel(fmt.Sprintf("plan: detecting the compressor of layer %d/%d", done, total))
		}
		po.OnDetectRead = bar.Add
	}
	return plan.Compute(ctx, plan.Input{Ref: c.Target, Platform: target.Platform, IndexDigest: target.IndexDigest, Image: target}, base, po)
}

// DefaultName derives an image name from a reference: the last path
// element of the repository or directory.
func DefaultName(r imgref.Ref) string {
	p := r.Path
	if !r.Local() {
		if ref, err := name.ParseReference(r.Path); err == nil {
			p = ref.Context().RepositoryStr()
		}
	}
	n := filepath.Base(strings.TrimSuffix(p, "/"))
	n = strings.TrimSuffix(n, filepath.Ext(n))
	var b strings.Builder
	for _, c := range n {
		if isAlnum(c) || strings.ContainsRune("._-", c) {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 || !isAlnum(rune(b.String()[0])) {
		return "image"
	}
	return b.String()
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ReadPlans reads a JSON stream of plans from each file, or from stdin
// when no file is named.
func ReadPlans(files []string, stdin io.Reader) ([]*plan.Plan, error) {
	var out []*plan.Plan
	read := func(r io.Reader, name string) error {
		d := plan.NewDecoder(r)
		for {
			p, err := d.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			out = append(out, p)
		}
	}
	if len(files) == 0 {
		if err := read(stdin, "stdin"); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fault.Errorf(fault.Env, "%w", err)
		}
		err = read(fh, f)
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fault.WithHint(fault.Errorf(fault.Usage, "pack: the input holds no plan"), fault.Usage,
			"pipe the output of `diffah plan` in, or name plan files")
	}
	return out, nil
}
