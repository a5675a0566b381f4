package deliver

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/unpack"
)

// ImportRequest is one import: an archive stream, the opened baselines
// and the parsed outputs.
type ImportRequest struct {
	Archive io.Reader
	// BaselineArgs are the --baseline arguments (REF or NAME=REF), opened
	// once the sidecar is read: without Platform, a baseline that is an
	// index is read for the platform the sidecar records for its image.
	BaselineArgs []string
	Platform     string
	Open         imgref.Options
	Outputs      map[string]imgref.Ref
	VerifyKey    *ecdsa.PublicKey
	// DryRun reads only the sidecar and checks every needed blob is
	// reachable from the baselines; nothing is written.
	DryRun bool
	// TempDir is where to unpack ("" = beside the first local output,
	// else the system temp dir).
	TempDir string
	Strict  bool
	Jobs    int
	// Write are the options for writing the outputs.
	Write    imgref.Options
	Log      *slog.Logger
	Progress io.Writer
	// OnReport receives the per-image report as soon as there is one
	// (also when a preflight refusal stops the import early).
	OnReport func(*resolve.Report)
	// OnWritten is called after each image written to its output.
	OnWritten func(Written)
}

// Import unpacks the archive into a private work directory, resolves it
// against the baselines and writes each resolved image to its output. The
// error is that of the first failure, or Worst(report).
func Import(ctx context.Context, c ImportRequest) error {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.OnReport == nil {
		c.OnReport = func(*resolve.Report) {}
	}
	bases := map[string]resolve.Baseline{}
	closeBases := func() {}
	defer func() { closeBases() }()
	// Everything that can refuse runs as soon as the sidecar is read,
	// before a byte of a baseline layer is.
	prepare := func(sc *sidecar.Sidecar) error {
		if err := CheckOutputsFor(sc, c.Outputs, c.Write.AllowConvert, c.Log); err != nil {
			return err
		}
		if err := CheckDeltaPlatform(sc, c.Platform); err != nil {
			return err
		}
		if err := checkBaselineGiven(sc, c.BaselineArgs); err != nil {
			return err
		}
		b, cl, err := OpenBaselinesFor(ctx, sc, c.BaselineArgs, c.Platform, c.Open)
		if err != nil {
			return err
		}
		bases, closeBases = b, cl
		return nil
	}
	if c.DryRun {
		head, err := unpack.Head(c.Archive, unpack.Options{VerifyKey: c.VerifyKey})
		if err != nil {
			return err
		}
		if err := prepare(head.Sidecar); err != nil {
			return err
		}
		rep, err := resolve.Check(head.Sidecar, bases, resolve.Options{Strict: c.Strict, Log: c.Log})
		if rep != nil {
			c.OnReport(rep)
		}
		if err != nil {
			return err
		}
		return Worst(rep)
	}
	// Work beside the first local output (same filesystem: renames, no
	// copies), in a private directory that a later run sweeps only once
	// this one is gone.
	beside := filepath.Join(os.TempDir(), "diffah-import")
	if c.TempDir != "" {
		beside = filepath.Join(c.TempDir, "diffah-import")
	} else {
		for _, r := range c.Outputs {
			if r.Local() {
				beside = r.Path
				break
			}
		}
	}
	wd, err := atomicdir.New(beside)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer wd.Abort()
	work := wd.Path
	dir := filepath.Join(work, "layout")
	// The baselines are checked as soon as the sidecar is read, before
	// anything is unpacked: a wrong baseline costs no I/O.
	preflight := func(sc *sidecar.Sidecar) error {
		if err := prepare(sc); err != nil {
			return err
		}
		rep, err := resolve.Check(sc, bases, resolve.Options{Strict: c.Strict, Log: c.Log})
		if err != nil && rep != nil {
			c.OnReport(rep)
		}
		return platformHint(err, sc, bases)
	}
	if _, err := unpack.Read(ctx, c.Archive, dir, unpack.Options{VerifyKey: c.VerifyKey, Log: c.Log, Progress: c.Progress, Preflight: preflight}); err != nil {
		return err
	}
	// The work layout is this run's alone and goes away with it: its
	// verified blobs can become the outputs' by a link.
	c.Write.LinkFrom = dir
	return complete(ctx, dir, bases, c, resolve.Options{TempDir: work, LeaveReused: MountableReuse(bases, c.Outputs, c.Write.Insecure)})
}

// Resolve completes the layout dir that unpack wrote against the
// baselines c.BaselineArgs and writes each resolved image to its output
// (resolve -o): import without its archive, so c's Archive, VerifyKey,
// DryRun and TempDir are not used. The error is that of the first
// failure, or Worst(report).
func Resolve(ctx context.Context, dir string, c ImportRequest) error {
	bases, closeBases, err := OpenBaselinesForLayout(ctx, dir, c.BaselineArgs, c.Platform, c.Open)
	if err != nil {
		return err
	}
	defer closeBases()
	return complete(ctx, dir, bases, c, resolve.Options{})
}

// complete resolves dir (with o, to which c adds its options), reports,
// and writes the outputs: the end import and resolve share.
func complete(ctx context.Context, dir string, bases map[string]resolve.Baseline, c ImportRequest, o resolve.Options) error {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	o.Strict, o.Jobs, o.Log, o.Progress = c.Strict, c.Jobs, c.Log, c.Progress
	rep, err := resolve.Complete(ctx, dir, bases, o)
	if rep != nil && c.OnReport != nil {
		c.OnReport(rep)
	}
	if err != nil {
		return err
	}
	if err := WriteImages(ctx, c.Log, dir, rep, c.Outputs, bases, c.Write, c.OnWritten); err != nil {
		return err
	}
	return Worst(rep)
}

// platformHint names, on a preflight refusal, its likeliest cause when
// there is one: a baseline that is a single image for another platform
// than the delta's image (an amd64 image given for an arm64 delta).
func platformHint(err error, sc *sidecar.Sidecar, bases map[string]resolve.Baseline) error {
	if err == nil {
		return nil
	}
	for _, im := range sc.Images {
		b, ok := bases[im.Name]
		if !ok {
			b, ok = bases[""]
		}
		img, isImg := b.Image.(*imgref.Image)
		if !ok || !isImg || img.IndexDigest != "" || img.Platform == "" || im.Target.Platform == "" || platformMatches(im.Target.Platform, img.Platform) {
			continue
		}
		return fault.WithHint(err, fault.KindOf(err, fault.Integrity), fmt.Sprintf("--baseline %s is an image for %s, the delta's image %q is for %s: give the baseline for %s, or the index that holds it",
			b.Ref, img.Platform, im.Name, im.Target.Platform, im.Target.Platform))
	}
	return err
}

// checkBaselineGiven refuses (exit 2) a single-image delta made against
// a baseline when no --baseline is given: nothing could resolve.
func checkBaselineGiven(sc *sidecar.Sidecar, args []string) error {
	if len(args) > 0 || len(sc.Images) != 1 || sc.Images[0].Baseline == nil {
		return nil
	}
	b := sc.Images[0].Baseline
	what := b.Ref
	if what == "" {
		what = b.ManifestDigest.String()
	}
	return fault.WithHint(fault.Errorf(fault.Usage, "import: no --baseline: the delta was made against %s", what), fault.Usage,
		"give the image the site holds: --baseline REF (e.g. --baseline oci:./app-v1)")
}
