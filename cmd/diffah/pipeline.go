package main

import (
	"fmt"
	"io"
	"os"

	"github.com/diffah/diffah/deliver"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/signature"
)

// PlanCmd is `diffah plan`.
type PlanCmd struct {
	Target           string `help:"Image to deliver (the new version)." required:"" placeholder:"REF"`
	Baseline         string `help:"Image the receiving site already has." placeholder:"REF" xor:"base"`
	BaselineManifest string `help:"A standalone manifest JSON of the baseline, when only that is at hand (no intra-layer patches then)." type:"existingfile" placeholder:"FILE" xor:"base"`
	NoBaseline       bool   `help:"The site has no version of this image (a new service): everything ships, except what pack finds in the other baselines of a bundle." xor:"base"`
	Platform         string `help:"Platform to pick from a manifest list / index (default: this machine's)." placeholder:"OS/ARCH[/VARIANT]"`
	Name             string `help:"Image name inside a bundle (default: from the target reference)." placeholder:"NAME"`
	IntraLayer       string `help:"Intra-layer patches: auto or off (default: ${default})." default:"auto" enum:"auto,off" placeholder:"MODE"`
	Jobs             int    `help:"Parallel workers (default: number of CPUs)." placeholder:"N"`
	ReusedRecipes    string `help:"Record how each reused layer is compressed, so a site whose baseline holds it only uncompressed (a Docker/Podman engine, a docker save archive) can rebuild it: auto reads every reused layer once (from a local baseline rather than a registry); off skips that (default: ${default})." default:"auto" enum:"auto,off" placeholder:"MODE"`
	RegistryFlags
}

// Help adds examples to --help.
func (PlanCmd) Help() string { return helpText("plan") + commonExamples("plan", true) }

// Run computes the plan.
func (c *PlanCmd) Run(g *Globals, s stdio) error {
	p, err := c.compute(g, s)
	if err != nil {
		return err
	}
	b, err := p.Marshal()
	if err != nil {
		return fault.Wrap(fault.Internal, err)
	}
	_, err = s.out.Write(b)
	return err
}

func (c *PlanCmd) compute(g *Globals, s stdio) (*plan.Plan, error) {
	return deliver.Plan(g.ctx, deliver.PlanRequest{Target: c.Target, Baseline: c.Baseline, BaselineManifest: c.BaselineManifest, NoBaseline: c.NoBaseline,
		Platform: c.Platform, Name: c.Name, IntraLayer: c.IntraLayer, ReusedRecipes: c.ReusedRecipes, Jobs: c.Jobs, Image: c.options(c.Platform), Log: g.log, Progress: g.progressTo(s.err)})
}

// PackCmd is `diffah pack`.
type PackCmd struct {
	Plans    []string `arg:"" optional:"" sep:"none" help:"Plan files (default: a JSON stream of plans on stdin)." placeholder:"PLAN"`
	Output   string   `short:"o" help:"Write the archive to FILE (atomically) instead of stdout, or push it to a registry as an OCI artifact (docker://HOST/REPO:TAG)." placeholder:"FILE|docker://REF"`
	Compress string   `help:"Compress the archive as a whole: auto (zstd for a bundle of several images, none for one), none or zstd (default: ${default})." default:"auto" enum:"auto,none,zstd"`
	SignKey  string   `help:"Sign the archive with this ECDSA P-256 private key (PKCS#8 PEM)." type:"existingfile" placeholder:"KEY.pem"`
	Jobs     int      `help:"Parallel workers (default: number of CPUs)." placeholder:"N"`
	// Independent is for sites that may not hold every baseline of a
	// bundle at resolve time.
	Independent bool `help:"Keep each image to its own baseline (by default an image of a bundle reuses and patches from the other images' baselines too, and a layer may be patched against layers the archive rebuilds before it; the image then needs those baselines and images at resolve)."`
	RegistryFlags
	LockFlags
	ForceFlags
}

// Help adds examples to --help.
func (PackCmd) Help() string { return helpText("pack") + commonExamples("pack", true) }

// Run packs.
func (c *PackCmd) Run(g *Globals, s stdio) error {
	release, err := c.claim(g, c.ForceFlags, "-o", c.Output)
	if err != nil {
		return err
	}
	defer release()
	plans, err := readPlans(c.Plans, s.in)
	if err != nil {
		return err
	}
	key, err := signature.KeyFlag("--sign-key", c.SignKey, signature.LoadPrivateKey)
	if err != nil {
		return err
	}
	var rep *pack.Report
	write := func(w io.Writer) (err error) {
		rep, err = pack.Write(g.ctx, w, plans, pack.Options{Compress: c.Compress, Jobs: c.Jobs, SignKey: key,
			Image: c.options(""), Tool: toolName(), Log: g.log, Progress: g.progressTo(s.err), Independent: c.Independent})
		return err
	}
	err = writeArchive(g, s, c.RegistryFlags, c.Output, write)
	g.summarize(s, c.Output, rep, err)
	return err
}

func readPlans(files []string, stdin io.Reader) ([]*plan.Plan, error) {
	if len(files) == 0 && isTerminalReader(stdin) {
		return nil, fault.WithHint(fault.Errorf(fault.Usage, "pack: no plan given and stdin is a terminal"), fault.Usage,
			"pipe a plan in (diffah plan ... | diffah pack) or name plan files")
	}
	return deliver.ReadPlans(files, stdin)
}

func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && isTerminal(f)
}

// writeArchive runs write against out: stdout ("" or "-"), a file
// (written atomically; the caller claimed it) or a registry artifact
// (docker://).
func writeArchive(g *Globals, s stdio, rf RegistryFlags, out string, write func(io.Writer) error) error {
	if out == "" || out == "-" {
		if err := refuseTerminal(s.out, "a delta archive"); err != nil {
			return err
		}
		return write(s.out)
	}
	pushed, err := deliver.WriteArchive(g.ctx, out, rf.options(""), write)
	if err != nil {
		return err
	}
	if pushed != nil {
		fmt.Fprintf(s.err, "pushed %s: archive %s (%d bytes), manifest %s\n", out, pushed.Blob, pushed.Size, pushed.Manifest)
	}
	return nil
}
