package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/diffah/diffah/deliver"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/signature"
	"github.com/diffah/diffah/unpack"
)

// UnpackCmd is `diffah unpack`.
type UnpackCmd struct {
	Delta     string `arg:"" optional:"" help:"Archive file, or docker://REF of an archive pushed with pack -o (default: stdin)." placeholder:"DELTA"`
	Output    string `short:"o" required:"" help:"Directory to create: a partial OCI layout for resolve." placeholder:"DIR"`
	VerifyKey string `help:"Require a signature by this public key (PKIX PEM) and check it before writing." type:"existingfile" placeholder:"PUB.pem"`
	RegistryFlags
	LockFlags
	ForceFlags
}

// Help adds examples to --help.
func (UnpackCmd) Help() string { return helpText("unpack") + commonExamples("unpack", true) }

// Run unpacks.
func (c *UnpackCmd) Run(g *Globals, s stdio) (err error) {
	defer func() { err = deliver.NameInput(c.Delta, err) }()
	key, err := signature.KeyFlag("--verify-key", c.VerifyKey, signature.LoadPublicKey)
	if err != nil {
		return err
	}
	locks, err := c.lock(g, c.Output)
	if err != nil {
		return err
	}
	defer locks.Release()
	if err := unpack.CheckOutput(c.Output, c.Force); err != nil {
		return err
	}
	in, closeIn, err := openInputFrom(g, c.RegistryFlags, c.Delta, s.in)
	if err != nil {
		return err
	}
	defer closeIn()
	res, err := unpack.Read(g.ctx, in, c.Output, unpack.Options{VerifyKey: key, Log: g.log, Progress: g.progressTo(s.err), Replace: c.Force})
	if err != nil {
		return err
	}
	g.log.Info("unpacked", "dir", c.Output, "images", len(res.Sidecar.Images), "signed", res.Signed)
	return nil
}

// openInputFrom opens an archive from a file, stdin, or a registry
// artifact (docker://).
func openInputFrom(g *Globals, rf RegistryFlags, path string, stdin io.Reader) (io.Reader, func(), error) {
	if (path == "" || path == "-") && isTerminalReader(stdin) {
		return nil, nil, fault.WithHint(fault.Errorf(fault.Usage, "no archive given and stdin is a terminal"), fault.Usage,
			"name the archive file or redirect it in (< file.dlt)")
	}
	return deliver.OpenArchive(g.ctx, path, stdin, rf.options(""))
}

// BaselineFlags name the baseline image(s).
type BaselineFlags struct {
	Baseline []string `sep:"none" help:"Baseline image: REF, or NAME=REF per image of a bundle (repeatable)." placeholder:"[NAME=]REF"`
	Platform string   `help:"Platform to pick when a baseline is an index." placeholder:"OS/ARCH[/VARIANT]"`
	Strict   bool     `help:"Fail before writing anything when any image of a bundle lacks a usable baseline (default: skip that image with a warning, resolve the rest, exit 6)."`
	JSON     bool     `help:"Print the per-image report as JSON on stdout."`
	Jobs     int      `help:"Parallel workers (default: number of CPUs)." placeholder:"N"`
	RegistryFlags
}

// ResolveCmd is `diffah resolve`.
type ResolveCmd struct {
	Dir    string   `arg:"" help:"Layout written by unpack." placeholder:"DIR"`
	Output []string `sep:"none" short:"o" help:"Also write the rebuilt image to OUTREF (NAME=OUTREF per image of a bundle; repeatable)." placeholder:"[NAME=]OUTREF"`
	BaselineFlags
	AllowConvert bool `help:"Allow converting between OCI and Docker media types when writing -o (digests change)."`
	LockFlags
	ForceFlags
}

// Help adds examples to --help.
func (ResolveCmd) Help() string { return helpText("resolve") + commonExamples("resolve", true) }

// Run resolves.
func (c *ResolveCmd) Run(g *Globals, s stdio) error {
	outs, err := deliver.ParseOutputs(c.Output)
	if err != nil {
		return err
	}
	if err := deliver.CheckOutputs(g.ctx, outs); err != nil {
		return err
	}
	locks, err := c.lock(g, append(deliver.LocalPaths(outs), c.Dir)...)
	if err != nil {
		return err
	}
	defer locks.Release()
	if err := deliver.CheckNewOutputs(outs, c.Force); err != nil {
		return err
	}
	o := c.pushOptions(g, s)
	o.AllowConvert = c.AllowConvert
	return deliver.Resolve(g.ctx, c.Dir, deliver.ImportRequest{BaselineArgs: c.Baseline, Platform: c.Platform, Open: c.options(c.Platform), Outputs: outs, Strict: c.Strict, Jobs: c.Jobs,
		Write: o, Log: g.log, Progress: g.progressTo(s.err), OnReport: func(r *resolve.Report) { printReport(s, g, r, c.JSON) }, OnWritten: g.written(s)})
}

// pushOptions are the options for writing outputs: progress of a push is
// drawn like that of resolve.
func (r RegistryFlags) pushOptions(g *Globals, s stdio) imgref.Options {
	o := r.options("")
	o.Progress = g.progressTo(s.err)
	return o
}

// printReport prints resolve's per-image report: JSON on stdout with
// --json, else on stderr (one log record per image with --log-format json).
func printReport(s stdio, g *Globals, rep *resolve.Report, asJSON bool) {
	switch {
	case asJSON:
		rep.WriteJSON(s.out)
	case g.Quiet:
	case g.jsonLog:
		rep.LogJSON(s.err)
	default:
		rep.WriteText(s.err)
	}
}

// ImportCmd is `diffah import`.
type ImportCmd struct {
	Delta     string   `arg:"" optional:"" help:"Archive file, or docker://REF of an archive pushed with pack -o (default: stdin)." placeholder:"DELTA"`
	Output    []string `sep:"none" short:"o" help:"Where to write the rebuilt image: OUTREF, or NAME=OUTREF per image (repeatable)." placeholder:"[NAME=]OUTREF"`
	VerifyKey string   `help:"Require a signature by this public key (PKIX PEM)." type:"existingfile" placeholder:"PUB.pem"`
	DryRun    bool     `help:"Read the sidecar, check every needed blob is reachable, write nothing."`
	TempDir   string   `help:"Where to unpack before resolving (default: beside the first output, else the system temp dir)." placeholder:"DIR"`
	BaselineFlags
	AllowConvert bool `help:"Allow converting between OCI and Docker media types (digests change)."`
	LockFlags
	ForceFlags
}

// Help adds examples to --help.
func (ImportCmd) Help() string { return helpText("import") + commonExamples("import", true) }

// Run imports.
func (c *ImportCmd) Run(g *Globals, s stdio) (err error) {
	defer func() { err = deliver.NameInput(c.Delta, err) }()
	outs, err := deliver.ParseOutputs(c.Output)
	if err != nil {
		return err
	}
	if len(outs) == 0 && !c.DryRun {
		return fault.WithHint(fault.Errorf(fault.Usage, "import: no output: give -o OUTREF"), fault.Usage,
			"e.g. -o oci:./app-v2; or use unpack + resolve to keep the layout")
	}
	if err := deliver.CheckOutputs(g.ctx, outs); err != nil {
		return err
	}
	key, err := signature.KeyFlag("--verify-key", c.VerifyKey, signature.LoadPublicKey)
	if err != nil {
		return err
	}
	if !c.DryRun {
		// Before anything is read: a second import to the same output
		// refuses at once.
		locks, err := c.lock(g, deliver.LocalPaths(outs)...)
		if err != nil {
			return err
		}
		defer locks.Release()
		if err := deliver.CheckNewOutputs(outs, c.Force); err != nil {
			return err
		}
	}
	if err := deliver.CheckBaselineArgs(c.Baseline); err != nil {
		return err
	}
	in, closeIn, err := openInputFrom(g, c.RegistryFlags, c.Delta, s.in)
	if err != nil {
		return err
	}
	defer closeIn()
	o := c.pushOptions(g, s)
	o.AllowConvert = c.AllowConvert
	return deliver.Import(g.ctx, deliver.ImportRequest{Archive: in, BaselineArgs: c.Baseline, Platform: c.Platform, Open: c.options(c.Platform), Outputs: outs, VerifyKey: key, DryRun: c.DryRun,
		TempDir: c.TempDir, Strict: c.Strict, Jobs: c.Jobs, Write: o, Log: g.log, Progress: g.progressTo(s.err),
		OnReport: func(r *resolve.Report) { printReport(s, g, r, c.JSON) }, OnWritten: g.written(s)})
}

// written says what an output received and how it was checked: a
// container engine's image ID (always, unless --quiet: it is how to find
// the image there), else a line for people (see say).
func (g *Globals) written(s stdio) func(deliver.Written) {
	return func(w deliver.Written) {
		switch {
		case w.ID == "" && w.Converted != "":
			g.say(s, fmt.Sprintf("wrote %s: image %s converted to Docker media types, %s (the target is %s; config and layers verified against their digests)", w.Output, w.Image, w.Converted, w.Manifest))
		case w.ID == "":
			g.say(s, fmt.Sprintf("wrote %s: image %s %s (verified: every blob against its digest, the manifest against the target's)", w.Output, w.Image, w.Manifest))
		case g.Quiet:
		case g.jsonLog:
			slog.New(slog.NewJSONHandler(s.err, nil)).Info("image loaded", "image", w.Image, "output", w.Output.String(), "id", w.ID)
		default:
			fmt.Fprintf(s.err, "loaded %s: image ID %s (check: docker image inspect --format '{{.Id}}' %s)\n", w.Output, w.ID, w.Output.Path)
		}
	}
}
