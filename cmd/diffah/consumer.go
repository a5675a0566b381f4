package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/diffah/diffah/artifact"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/atomicdir"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/sidecar"
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
}

// Help adds examples to --help.
func (UnpackCmd) Help() string {
	return `Reads the archive in one pass (a pipe is fine), verifies every entry against
the sidecar as it streams, and creates DIR only when all of it verified.

Examples:
  diffah unpack --output ./app-v2 < /media/usb/app.dlt
  cat app.dlt.part.* | diffah unpack -o ./app-v2
  diffah unpack --verify-key vendor.pub -o ./app-v2 app.dlt
  diffah unpack -o ./app-v2 docker://registry.internal/deltas:app-1-2   (an archive pushed with pack -o docker://)
  diffah unpack --wait -o ./app-v2 app.dlt   (another diffah writing ./app-v2: wait for it; default: refuse, exit 3)` + commonExamples("unpack", true)
}

// Run unpacks.
func (c *UnpackCmd) Run(g *Globals, s stdio) (err error) {
	defer func() { err = nameInput(c.Delta, err) }()
	key, err := loadVerifyKey(c.VerifyKey)
	if err != nil {
		return err
	}
	locks, err := c.lock(g, c.Output)
	if err != nil {
		return err
	}
	defer locks.Release()
	in, closeIn, err := openInputFrom(g, c.RegistryFlags, c.Delta, s.in)
	if err != nil {
		return err
	}
	defer closeIn()
	res, err := unpack.Read(g.ctx, in, c.Output, unpack.Options{VerifyKey: key, Log: g.log, Progress: g.progressTo(s.err)})
	if err != nil {
		return err
	}
	g.log.Info("unpacked", "dir", c.Output, "images", len(res.Sidecar.Images), "signed", res.Signed)
	return nil
}

func loadVerifyKey(path string) (*ecdsa.PublicKey, error) {
	if path == "" {
		return nil, nil
	}
	k, err := signature.LoadPublicKey(path)
	if err != nil {
		return nil, fmt.Errorf("--verify-key: %w", err)
	}
	return k, nil
}

// openInputFrom opens an archive from a file, stdin, or a registry
// artifact (docker://).
func openInputFrom(g *Globals, rf RegistryFlags, path string, stdin io.Reader) (io.Reader, func(), error) {
	if strings.HasPrefix(path, "docker://") {
		ref, err := imgref.Parse(path)
		if err != nil {
			return nil, nil, err
		}
		ctx := context.Background()
		if g != nil {
			ctx = g.ctx
		}
		rc, _, err := artifact.Pull(ctx, ref, rf.options(""))
		if err != nil {
			return nil, nil, err
		}
		return rc, func() { rc.Close() }, nil
	}
	if path == "" || path == "-" {
		if isTerminalReader(stdin) {
			return nil, nil, fault.WithHint(fault.Errorf(fault.Usage, "no archive given and stdin is a terminal"), fault.Usage,
				"name the archive file or redirect it in (< file.dlt)")
		}
		return stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fault.WithHint(fault.Errorf(fault.Env, "reading the archive: %w", err), fault.Env,
			"check the file name; with no DELTA argument (or -) the archive is read from stdin")
	}
	return f, func() { f.Close() }, nil
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

func (b *BaselineFlags) open(g *Globals) (map[string]resolve.Baseline, func(), error) {
	out := map[string]resolve.Baseline{}
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for _, arg := range b.Baseline {
		name, ref := "", arg
		if n, r, ok := strings.Cut(arg, "="); ok && !strings.Contains(n, ":") {
			name, ref = n, r
		}
		if _, dup := out[name]; dup {
			closeAll()
			return nil, nil, fault.Errorf(fault.Usage, "--baseline %s: given twice for image %q", arg, name)
		}
		r, err := imgref.Parse(ref)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("--baseline %s: %w", arg, err)
		}
		img, err := imgref.Open(g.ctx, r, b.options(b.Platform))
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("--baseline %s: %w", arg, err)
		}
		closers = append(closers, img.Close)
		out[name] = resolve.Baseline{Ref: ref, Image: img}
	}
	return out, closeAll, nil
}

// ResolveCmd is `diffah resolve`.
type ResolveCmd struct {
	Dir    string   `arg:"" help:"Layout written by unpack." placeholder:"DIR"`
	Output []string `sep:"none" short:"o" help:"Also write the rebuilt image to OUTREF (NAME=OUTREF per image of a bundle; repeatable)." placeholder:"[NAME=]OUTREF"`
	BaselineFlags
	AllowConvert bool `help:"Allow converting between OCI and Docker media types when writing -o (digests change)."`
	LockFlags
}

// Help adds examples to --help.
func (ResolveCmd) Help() string {
	return `Checks first that every blob the delta needs is reachable from the baseline(s)
and lists all that are missing; then rebuilds, verifies every blob and that
each manifest digest equals the target's, and swaps the complete layout in.

Examples:
  diffah resolve --baseline oci:./app-v1 ./app-v2
  diffah resolve --baseline docker-archive:app-v1.tar ./app-v2 -o docker-archive:app-v2.tar:app:2
  diffah resolve --baseline docker-daemon:example.com/app:1 ./app-v2 -o docker-daemon:example.com/app:2
  diffah resolve --baseline a=oci:./a-v1 --baseline b=oci:./b-v1 --strict ./bundle
  diffah resolve --json --jobs 2 --baseline oci:./app-v1 ./app-v2 | jq -r '.images[].status'
  diffah resolve --platform linux/arm64 --baseline oci:./multi-v1 ./app-v2 --output oci:./out
  diffah resolve --allow-convert --baseline oci:./app-v1 ./app-v2 -o docker-archive:app.tar:app:2   (OCI to Docker: digests change)
  diffah resolve --wait --baseline oci:./app-v1 ./app-v2   (another diffah writing ./app-v2: wait for it; default: refuse, exit 3)` + commonExamples("resolve", true)
}

// Run resolves.
func (c *ResolveCmd) Run(g *Globals, s stdio) error {
	outs, err := parseOutputs(c.Output)
	if err != nil {
		return err
	}
	if err := checkOutputs(g, outs); err != nil {
		return err
	}
	locks, err := c.lock(g, append(localPaths(outs), c.Dir)...)
	if err != nil {
		return err
	}
	defer locks.Release()
	bases, closeBases, err := c.open(g)
	if err != nil {
		return err
	}
	defer closeBases()
	rep, err := resolve.Complete(g.ctx, c.Dir, bases, resolve.Options{Strict: c.Strict, Jobs: c.Jobs, Log: g.log, Progress: g.progressTo(s.err)})
	if rep != nil {
		printReport(s, g, rep, c.JSON)
	}
	if err != nil {
		return err
	}
	if err := writeImages(g, s.err, c.Dir, rep, outs, bases, c.pushOptions(g, s), c.AllowConvert); err != nil {
		return err
	}
	return worst(rep)
}

func worst(rep *resolve.Report) error {
	if k := rep.Worst(); k != 0 {
		return fault.Errorf(k, "resolve: not every image was resolved (see the report above)")
	}
	return nil
}

// checkOutputs fails before any work on outputs that cannot be written
// (a container engine that is not running, say).
func checkOutputs(g *Globals, outs map[string]imgref.Ref) error {
	for _, r := range outs {
		if err := imgref.CheckOutput(g.ctx, r); err != nil {
			return fmt.Errorf("-o %s: %w", r, err)
		}
	}
	return nil
}

func parseOutputs(args []string) (map[string]imgref.Ref, error) {
	out := map[string]imgref.Ref{}
	for _, a := range args {
		name, ref := "", a
		if n, r, ok := strings.Cut(a, "="); ok && !strings.Contains(n, ":") {
			name, ref = n, r
		}
		r, err := imgref.Parse(ref)
		if err != nil {
			return nil, fmt.Errorf("-o %s: %w", a, err)
		}
		if _, dup := out[name]; dup {
			return nil, fault.Errorf(fault.Usage, "-o %s: given twice for image %q", a, name)
		}
		out[name] = r
	}
	return out, nil
}

// pushOptions are the options for writing outputs: progress of a push is
// drawn like that of resolve.
func (r RegistryFlags) pushOptions(g *Globals, s stdio) imgref.Options {
	o := r.options("")
	o.Progress = g.progressTo(s.err)
	return o
}

// writeImages copies resolved images from the layout to their outputs.
func writeImages(g *Globals, stderr io.Writer, dir string, rep *resolve.Report, outs map[string]imgref.Ref, bases map[string]resolve.Baseline, o imgref.Options, allowConvert bool) error {
	if len(outs) == 0 {
		return nil
	}
	if _, ok := outs[""]; ok && len(rep.Images) != 1 {
		return fault.Errorf(fault.Usage, "-o: the delta holds %d images; name each output: -o NAME=OUTREF", len(rep.Images))
	}
	o.AllowConvert = allowConvert
	for name, ref := range outs {
		im := findImage(rep, name)
		if im == nil {
			return fault.Errorf(fault.Usage, "-o %s=…: the delta has no image %q", name, name)
		}
		if im.Status != resolve.StatusOK {
			g.log.Warn("not writing an unresolved image", "image", im.Name, "output", ref.String())
			continue
		}
		src, err := imgref.Open(g.ctx, imgref.Ref{Transport: "oci", Path: dir, Tag: im.Name}, imgref.Options{})
		if err != nil {
			return fmt.Errorf("reading resolved image %q: %w", im.Name, err)
		}
		var img v1.Image = src
		if b, ok := bases[im.Name]; ok {
			img = mountable(img, b, ref, o.Insecure)
		} else if b, ok := bases[""]; ok {
			img = mountable(img, b, ref, o.Insecure)
		}
		var id string
		if ref.Transport == imgref.DockerDaemon {
			// The engine keeps the config (its digest is the image ID),
			// not the manifest: the ID is what to check it by.
			id, err = imgref.LoadDaemon(g.ctx, ref, img, o)
		} else {
			err = imgref.Write(g.ctx, ref, img, o)
		}
		src.Close()
		if err != nil {
			return fmt.Errorf("-o %s: %w", ref.String(), err)
		}
		g.log.Info("image written", "image", im.Name, "output", ref.String(), "manifest", im.ManifestDigest)
		if id != "" && !g.Quiet {
			if g.jsonLog {
				slog.New(slog.NewJSONHandler(stderr, nil)).Info("image loaded", "image", im.Name, "output", ref.String(), "id", id)
			} else {
				fmt.Fprintf(stderr, "loaded %s: image ID %s (check: docker image inspect --format '{{.Id}}' %s)\n", ref, id, ref.Path)
			}
		}
	}
	return nil
}

// mountableReuse says which reused layers import need not download: those
// of an image whose output is a repository on the same registry as its
// baseline, where the push mounts them from the baseline's repository.
func mountableReuse(bases map[string]resolve.Baseline, outs map[string]imgref.Ref, insecure bool) func(string, sidecar.Blob) bool {
	return func(name string, b sidecar.Blob) bool {
		if b.From != "" {
			// Held by another image's baseline, which the push does not
			// mount from: it must be in the layout.
			return false
		}
		out, ok := outs[name]
		if !ok {
			out, ok = outs[""]
		}
		base, bok := bases[name]
		if !bok {
			base, bok = bases[""]
		}
		if !ok || !bok {
			return false
		}
		img, isRef := base.Image.(*imgref.Image)
		return isRef && imgref.SameRegistry(img.Ref, out, insecure)
	}
}

// mountable lets a push to the baseline's registry mount shared layers
// from the baseline's repository instead of uploading them.
func mountable(img v1.Image, b resolve.Baseline, out imgref.Ref, insecure bool) v1.Image {
	if base, ok := b.Image.(*imgref.Image); ok {
		return imgref.WithMounts(img, base, out, insecure)
	}
	return img
}

func findImage(rep *resolve.Report, name string) *resolve.ImageReport {
	for i := range rep.Images {
		if name == "" || rep.Images[i].Name == name {
			return &rep.Images[i]
		}
	}
	return nil
}

func printReport(s stdio, g *Globals, rep *resolve.Report, asJSON bool) {
	if asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		s.out.Write(append(b, '\n'))
		return
	}
	if g.Quiet {
		return
	}
	if g.jsonLog {
		// One record per image, whatever --log-level: the report is the
		// outcome, not a log line.
		rl := slog.New(slog.NewJSONHandler(s.err, nil))
		for _, im := range rep.Images {
			level := slog.LevelInfo
			switch im.Status {
			case resolve.StatusSkipped:
				level = slog.LevelWarn
			case resolve.StatusFailed:
				level = slog.LevelError
			}
			rl.Log(context.Background(), level, "image "+im.Status, "image", im.Name, "status", im.Status, "manifest", im.ManifestDigest.String(),
				"shipped", im.Shipped, "reused", im.Reused, "patched", im.Patched, "reason", im.Reason)
		}
		return
	}
	for _, im := range rep.Images {
		line := fmt.Sprintf("%-8s %s %s", strings.ToUpper(im.Status), im.Name, im.ManifestDigest)
		if im.Status == resolve.StatusOK && im.Reason != "" {
			line += " (" + im.Reason + ")"
		} else if im.Status == resolve.StatusOK {
			line += fmt.Sprintf(" (%d shipped, %d reused, %d patched)", im.Shipped, im.Reused, im.Patched)
		} else if im.Reason != "" {
			line += ": " + firstLine(im.Reason)
		}
		fmt.Fprintln(s.err, line)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
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
}

// Help adds examples to --help.
func (ImportCmd) Help() string {
	return `unpack + resolve in one step: streams the archive, rebuilds the image(s)
and writes them to the outputs. No copy of the archive is kept.

Examples:
  diffah import --baseline oci:./app-v1 -o oci:./app-v2 < app.dlt
  diffah import --baseline docker://reg.local/app:1 -o docker://reg.local/app:2 app.dlt
  diffah import --baseline docker-daemon:example.com/app:1 -o docker-daemon:example.com/app:2 app.dlt   (prints the image ID)
  diffah import --dry-run --baseline oci:./app-v1 app.dlt
  diffah import --verify-key vendor.pub --strict --json --baseline a=oci:./a-v1 --baseline b=oci:./b-v1 -o a=oci:./a -o b=oci:./b bundle.dlt
  diffah import --temp-dir /scratch --jobs 2 --platform linux/arm64 --baseline oci:./multi-v1 --output oci:./multi-v2 app.dlt
  diffah import --allow-convert --baseline oci:./app-v1 -o docker-archive:app.tar:app:2 app.dlt   (digests change)
  diffah import --wait --baseline oci:./app-v1 -o oci:./app-v2 app.dlt   (another diffah writing ./app-v2: wait for it; default: refuse, exit 3)` + commonExamples("import", true)
}

// Run imports.
func (c *ImportCmd) Run(g *Globals, s stdio) (err error) {
	defer func() { err = nameInput(c.Delta, err) }()
	outs, err := parseOutputs(c.Output)
	if err != nil {
		return err
	}
	if len(outs) == 0 && !c.DryRun {
		return fault.WithHint(fault.Errorf(fault.Usage, "import: no output: give -o OUTREF"), fault.Usage,
			"e.g. -o oci:./app-v2; or use unpack + resolve to keep the layout")
	}
	if err := checkOutputs(g, outs); err != nil {
		return err
	}
	key, err := loadVerifyKey(c.VerifyKey)
	if err != nil {
		return err
	}
	if !c.DryRun {
		// Before anything is read: a second import to the same output
		// refuses at once.
		locks, err := c.lock(g, localPaths(outs)...)
		if err != nil {
			return err
		}
		defer locks.Release()
	}
	bases, closeBases, err := c.open(g)
	if err != nil {
		return err
	}
	defer closeBases()
	in, closeIn, err := openInputFrom(g, c.RegistryFlags, c.Delta, s.in)
	if err != nil {
		return err
	}
	defer closeIn()
	if c.DryRun {
		head, err := unpack.Head(in, unpack.Options{VerifyKey: key})
		if err != nil {
			return err
		}
		rep, err := resolve.Check(head.Sidecar, bases, resolve.Options{Strict: c.Strict, Log: g.log})
		if rep != nil {
			printReport(s, g, rep, c.JSON)
		}
		if err != nil {
			return err
		}
		return worst(rep)
	}
	// Work beside the first local output (same filesystem: renames, no
	// copies), in a private directory that a later run sweeps only once
	// this one is gone.
	beside := filepath.Join(os.TempDir(), "diffah-import")
	if c.TempDir != "" {
		beside = filepath.Join(c.TempDir, "diffah-import")
	} else {
		for _, r := range outs {
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
		rep, err := resolve.Check(sc, bases, resolve.Options{Strict: c.Strict, Log: g.log})
		if err != nil && rep != nil {
			printReport(s, g, rep, c.JSON)
		}
		return err
	}
	if _, err := unpack.Read(g.ctx, in, dir, unpack.Options{VerifyKey: key, Log: g.log, Progress: g.progressTo(s.err), Preflight: preflight}); err != nil {
		return err
	}
	rep, err := resolve.Complete(g.ctx, dir, bases, resolve.Options{Strict: c.Strict, Jobs: c.Jobs, TempDir: work, Log: g.log, Progress: g.progressTo(s.err),
		LeaveReused: mountableReuse(bases, outs, c.Insecure)})
	if rep != nil {
		printReport(s, g, rep, c.JSON)
	}
	if err != nil {
		return err
	}
	if err := writeImages(g, s.err, dir, rep, outs, bases, c.pushOptions(g, s), c.AllowConvert); err != nil {
		return err
	}
	return worst(rep)
}
