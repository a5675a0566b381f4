package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/diffah/diffah/deliver"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgdiff"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/signature"
)

// ExportCmd is `diffah export`.
type ExportCmd struct {
	PlanCmd
	Output   string `short:"o" help:"Archive file to write (atomically); - for stdout; or docker://HOST/REPO:TAG to push it as an OCI artifact (required unless --dry-run)." placeholder:"FILE|docker://REF"`
	Compress string `help:"Compress the archive as a whole: auto (zstd for a bundle of several images, none for one), none or zstd (default: ${default})." default:"auto" enum:"auto,none,zstd"`
	SignKey  string `help:"Sign the archive with this ECDSA P-256 private key (PKCS#8 PEM)." type:"existingfile" placeholder:"KEY.pem"`
	DryRun   bool   `help:"Compute every patch and print what would ship and the exact archive size on stdout (progress and logs stay on stderr); write nothing (no --output needed)."`
	JSON     bool   `help:"With --dry-run: print the report as JSON on stdout (archiveBytes: the archive's exact size; per-layer shippedSize)."`
	LockFlags
	ForceFlags
}

// Help adds examples to --help.
func (ExportCmd) Help() string { return helpText("export") + commonExamples("export", true) }

// Run exports.
func (c *ExportCmd) Run(g *Globals, s stdio) error {
	if c.Output == "" && !c.DryRun {
		return fault.WithHint(fault.Errorf(fault.Usage, "export: no output: give -o FILE (- for stdout, or docker://REF)"), fault.Usage,
			"e.g. -o app.dlt; or --dry-run to see what would ship without writing")
	}
	if c.JSON && !c.DryRun {
		return fault.WithHint(fault.Errorf(fault.Usage, "export: --json describes a dry run"), fault.Usage, "add --dry-run, or use `diffah inspect --json` on the archive")
	}
	if !c.DryRun {
		release, err := c.claim(g, c.ForceFlags, "-o", c.Output)
		if err != nil {
			return err
		}
		defer release()
	}
	p, err := c.compute(g, s)
	if err != nil {
		return err
	}
	key, err := signature.KeyFlag("--sign-key", c.SignKey, signature.LoadPrivateKey)
	if err != nil {
		return err
	}
	opts := pack.Options{Compress: c.Compress, Jobs: c.Jobs, SignKey: key, Image: c.options(""), Tool: toolName(), Log: g.log, Progress: g.progressTo(s.err)}
	if c.DryRun {
		doc, err := deliver.DryRun(g.ctx, []*plan.Plan{p}, opts)
		if err != nil {
			return err
		}
		// The report is what a dry run makes: data, on stdout, as
		// inspect prints it.
		if c.JSON {
			return doc.WriteJSON(s.out)
		}
		return doc.WriteText(s.out)
	}
	var rep *pack.Report
	write := func(w io.Writer) (err error) {
		rep, err = pack.Write(g.ctx, w, []*plan.Plan{p}, opts)
		return err
	}
	// Like pack: a docker:// output pushes the archive as an OCI artifact
	// (it is not a file name).
	err = writeArchive(g, s, c.RegistryFlags, c.Output, write)
	g.summarize(s, c.Output, rep, err)
	return err
}

// InspectCmd is `diffah inspect`.
type InspectCmd struct {
	Input     string `arg:"" optional:"" help:"A plan or a delta archive (default: stdin)." placeholder:"PLAN|DELTA"`
	JSON      bool   `help:"Print JSON instead of text."`
	VerifyKey string `help:"Also check the archive's signature against this public key." type:"existingfile" placeholder:"PUB.pem"`
	HTML      string `help:"Also write a self-contained HTML report (tables and a chart of shipped vs saved bytes per layer) to FILE." placeholder:"FILE"`
	Files     bool   `help:"List every file the archive records per layer with what it costs (path, old and new size, encoding, bytes shipped), not only the 10 costliest. On a plan, computes its patches first (writes nothing)."`
	RegistryFlags
	LockFlags
	ForceFlags
}

// Help adds examples to --help.
func (InspectCmd) Help() string { return helpText("inspect") + commonExamples("inspect", true) }

// Run inspects.
func (c *InspectCmd) Run(g *Globals, s stdio) (err error) {
	defer func() { err = deliver.NameInput(c.Input, err) }()
	in, closeIn, err := openInputFrom(g, c.RegistryFlags, c.Input, s.in)
	if err != nil {
		return err
	}
	defer closeIn()
	key, err := signature.KeyFlag("--verify-key", c.VerifyKey, signature.LoadPublicKey)
	if err != nil {
		return err
	}
	doc, err := deliver.Describe(g.ctx, in, c.Input, key, pack.Options{Image: c.options(""), Tool: toolName(), Log: g.log, Progress: g.progressTo(s.err)})
	if err != nil {
		return err
	}
	doc.AllFiles = c.Files
	if c.HTML != "" {
		if err := writeOutput(g, c.LockFlags, c.ForceFlags, "--html", c.HTML, s.out, "HTML", doc.WriteHTML); err != nil {
			return err
		}
	}
	if c.JSON {
		return doc.WriteJSON(s.out)
	}
	return doc.WriteText(s.out)
}

// DiffCmd is `diffah diff`.
type DiffCmd struct {
	Ref0      string `arg:"" help:"First image." placeholder:"REF0"`
	Ref1      string `arg:"" help:"Second image." placeholder:"REF1"`
	Semantic  bool   `help:"Ignore timestamps, names and other non-content noise; compare the flattened filesystems."`
	ReportDir string `help:"Write the differing files of each side under DIR/input-0 and DIR/input-1 (for diff -ur)." placeholder:"DIR"`
	JSON      bool   `help:"Print JSON instead of a table."`
	Platform  string `help:"Platform to pick from multi-platform references." placeholder:"OS/ARCH[/VARIANT]"`
	RegistryFlags
	LockFlags
}

// Help adds examples to --help.
func (DiffCmd) Help() string { return helpText("diff") + commonExamples("diff", true) }

// Run diffs.
func (c *DiffCmd) Run(g *Globals, s stdio) error {
	locks, err := c.lock(g, c.ReportDir)
	if err != nil {
		return err
	}
	defer locks.Release()
	res, err := deliver.Diff(g.ctx, [2]string{c.Ref0, c.Ref1}, c.options(c.Platform), imgdiff.Options{Semantic: c.Semantic, ReportDir: c.ReportDir})
	if err != nil {
		return err
	}
	if c.JSON {
		err = res.WriteJSON(s.out)
	} else {
		err = res.WriteText(s.out)
	}
	if err != nil {
		return err
	}
	if !res.Equal {
		return fault.Errorf(fault.Different, "images differ") // exit 1, not printed
	}
	return nil
}

// KeygenCmd is `diffah keygen`.
type KeygenCmd struct {
	Key string `arg:"" help:"Private key file to create (PKCS#8 PEM, mode 0600)." placeholder:"KEY.pem"`
	Pub string `arg:"" help:"Public key file to create (PKIX PEM)." placeholder:"PUB.pem"`
	LockFlags
	ForceFlags
}

// Help adds examples to --help.
func (KeygenCmd) Help() string { return helpText("keygen") + commonExamples("keygen", false) }

// Run generates keys.
func (c *KeygenCmd) Run(g *Globals, s stdio) error {
	locks, err := c.lock(g, c.Key, c.Pub)
	if err != nil {
		return err
	}
	defer locks.Release()
	if err := signature.GenerateKeyTo(c.Key, c.Pub, c.Force); err != nil {
		return err
	}
	pub, err := signature.LoadPublicKey(c.Pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.err, "wrote %s and %s (key %s)\n", c.Key, c.Pub, signature.Fingerprint(pub))
	return nil
}

// VersionCmd is `diffah version`.
type VersionCmd struct {
	JSON bool `help:"Print JSON."`
}

// Help adds examples to --help.
func (VersionCmd) Help() string { return helpText("version") + commonExamples("version", false) }

// version is set at link time (-ldflags "-X main.version=...").
var version = ""

func toolName() string { return "diffah " + versionString() }

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Run prints the version.
func (c *VersionCmd) Run(g *Globals, s stdio) error {
	if c.JSON {
		return json.NewEncoder(s.out).Encode(map[string]any{"version": versionString(), "planVersion": fmt.Sprintf("%d.%d", plan.Major, plan.Minor)})
	}
	_, err := fmt.Fprintf(s.out, "diffah %s (plan format %d.%d)\n", versionString(), plan.Major, plan.Minor)
	return err
}
