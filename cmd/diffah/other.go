package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/diffah/diffah/imgdiff"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/inspect"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/signature"
	"github.com/diffah/diffah/unpack"
)

// ExportCmd is `diffah export`.
type ExportCmd struct {
	PlanCmd
	Output   string `short:"o" help:"Archive file to write (atomically); - for stdout; or docker://HOST/REPO:TAG to push it as an OCI artifact." required:"" placeholder:"FILE|docker://REF"`
	Compress string `help:"Compress the archive as a whole: none or zstd (default: ${default})." default:"none" enum:"none,zstd"`
	SignKey  string `help:"Sign the archive with this ECDSA P-256 private key (PKCS#8 PEM)." type:"existingfile" placeholder:"KEY.pem"`
	DryRun   bool   `help:"Print what would ship (the plan's totals) and write nothing."`
	LockFlags
}

// Help adds examples to --help.
func (ExportCmd) Help() string {
	return `plan + pack in one step.

Examples:
  diffah export --target oci:./app-v2 --baseline oci:./app-v1 -o app.dlt
  diffah export --target docker://reg.local/app:2 --baseline docker://reg.local/app:1 -o - | ssh site 'diffah import ...'
  diffah export --target docker-daemon:example.com/app:2 --baseline docker-daemon:example.com/app:1 -o app.dlt
  diffah export --reused-recipes off --target docker://reg.local/app:2 --baseline docker://reg.local/app:1 -o app.dlt
  diffah export --dry-run --target oci:./app-v2 --baseline oci:./app-v1
  diffah export --target oci:./app-v2 --baseline-manifest v1.json --intra-layer off --compress zstd -o app.dlt
  diffah export --sign-key vendor.key --name app --jobs 2 --platform linux/amd64 --target oci:./multi-v2 --baseline oci:./multi-v1 -o app.dlt
  diffah export --no-baseline --target oci:./new-v1 --output new.dlt   (the site has nothing: everything ships)
  diffah export --wait --target oci:./app-v2 --baseline oci:./app-v1 -o app.dlt   (another diffah writing app.dlt: wait, not refuse)` + commonExamples("export", true)
}

// Run exports.
func (c *ExportCmd) Run(g *Globals, s stdio) error {
	p, err := c.compute(g)
	if err != nil {
		return err
	}
	if c.DryRun {
		return inspect.WritePlans(s.err, []*plan.Plan{p})
	}
	key, err := loadSignKey(c.SignKey)
	if err != nil {
		return err
	}
	write := func(w io.Writer) error {
		rep, err := pack.Write(g.ctx, w, []*plan.Plan{p}, pack.Options{Compress: c.Compress, Jobs: c.Jobs, SignKey: key,
			Image: c.options(""), Tool: toolName(), Log: g.log, Progress: g.progressTo(s.err)})
		warnWhole(g.log, rep)
		return err
	}
	// Like pack: a docker:// output pushes the archive as an OCI artifact
	// (it is not a file name).
	if strings.HasPrefix(c.Output, "docker://") {
		return pushArchive(g, s, c.Output, c.RegistryFlags, write)
	}
	return writeOutput(g, c.LockFlags, c.Output, s.out, "a delta archive", write)
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
}

// Help adds examples to --help.
func (InspectCmd) Help() string {
	return `Shows version, platform, target and baseline manifests, shipped vs reused
blobs and bytes, and the percentage saved against the full image; per layer
that travels, the 10 files that cost the most (path, old and new size, how
encoded, bytes shipped; "≈" marks a proportional share), and --files lists
them all. Reads only the head of an archive.

Examples:
  diffah inspect app.dlt
  diffah plan --target oci:./app-v2 --baseline oci:./app-v1 | diffah inspect
  diffah inspect --json app.dlt | jq '.images[].savedPercent'
  diffah inspect --files --json app.dlt | jq -r '.images[].blobs[].files.files[]? | [.path, .bytes, .encoding] | @tsv'
  diffah plan --target oci:./app-v2 --baseline oci:./app-v1 | diffah inspect --files   (why is the delta this big? per file)
  diffah inspect --html report.html app.dlt
  diffah inspect --wait --html report.html app.dlt   (another diffah writing report.html: wait for it)
  diffah inspect docker://registry.internal/deltas:app-1-2
  diffah inspect --verify-key vendor.pub app.dlt` + commonExamples("inspect", true)
}

// Run inspects.
func (c *InspectCmd) Run(g *Globals, s stdio) (err error) {
	defer func() { err = nameInput(c.Input, err) }()
	in, closeIn, err := openInputFrom(g, c.RegistryFlags, c.Input, s.in)
	if err != nil {
		return err
	}
	defer closeIn()
	r, isJSON, err := sniff(in)
	if err != nil {
		return err
	}
	var doc *inspect.Doc
	if isJSON {
		plans, err := readPlans(nil, r)
		if err != nil {
			return err
		}
		doc = inspect.FromPlans(plans)
		if c.Files {
			if doc, err = describeComputed(g, s, c.RegistryFlags, plans); err != nil {
				return err
			}
		}
	} else {
		key, err := loadVerifyKey(c.VerifyKey)
		if err != nil {
			return err
		}
		h, err := unpack.Head(r, unpack.Options{VerifyKey: key})
		if err != nil {
			return err
		}
		doc = inspect.FromSidecar(h.Sidecar, h.Signed, h.KeyID, key != nil)
	}
	doc.AllFiles = c.Files
	if c.HTML != "" {
		if err := writeOutput(g, c.LockFlags, c.HTML, s.out, "HTML", doc.WriteHTML); err != nil {
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
func (DiffCmd) Help() string {
	return `Compares two images file by file: a table TYPE LAYER NAME INPUT-0 INPUT-1 DETAIL.
Exit code 0 when equal, 1 when different, other codes for errors.

Examples:
  diffah diff oci:./app-v1 oci:./app-v2
  diffah diff --semantic docker-archive:a.tar oci:./b --report-dir /tmp/d && echo same
  diffah diff --json oci:./app-v1 oci:./app-v2 | jq '.changes[] | select(.type=="File")'
  diffah diff --platform linux/arm64 oci:./multi-v1 oci:./multi-v2
  diffah diff --wait --report-dir /tmp/d oci:./app-v1 oci:./app-v2   (another diffah writing /tmp/d: wait for it)` + commonExamples("diff", true)
}

// Run diffs.
func (c *DiffCmd) Run(g *Globals, s stdio) error {
	var imgs [2]*imgref.Image
	for i, ref := range []string{c.Ref0, c.Ref1} {
		r, err := imgref.Parse(ref)
		if err != nil {
			return fmt.Errorf("REF%d: %w", i, err)
		}
		img, err := imgref.Open(g.ctx, r, c.options(c.Platform))
		if err != nil {
			return fmt.Errorf("REF%d: %w", i, err)
		}
		defer img.Close()
		imgs[i] = img
	}
	if c.ReportDir != "" {
		locks, err := c.lock(g, c.ReportDir)
		if err != nil {
			return err
		}
		defer locks.Release()
	}
	res, err := imgdiff.Compare(g.ctx, imgs[0], imgs[1], imgdiff.Options{Semantic: c.Semantic, ReportDir: c.ReportDir})
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
		return differ{}
	}
	return nil
}

// KeygenCmd is `diffah keygen`.
type KeygenCmd struct {
	Key string `arg:"" help:"Private key file to create (PKCS#8 PEM, mode 0600)." placeholder:"KEY.pem"`
	Pub string `arg:"" help:"Public key file to create (PKIX PEM)." placeholder:"PUB.pem"`
	LockFlags
}

// Help adds examples to --help.
func (KeygenCmd) Help() string {
	return `Writes a new ECDSA P-256 key pair. Refuses to overwrite existing files.

Example:
  diffah keygen vendor.key vendor.pub
  diffah pack --sign-key vendor.key < plan.json > app.dlt
  diffah unpack --verify-key vendor.pub -o ./app-v2 < app.dlt
  diffah keygen --wait vendor.key vendor.pub   (another diffah writing these: wait for it)` + commonExamples("keygen", false)
}

// Run generates keys.
func (c *KeygenCmd) Run(g *Globals, s stdio) error {
	locks, err := c.lock(g, c.Key, c.Pub)
	if err != nil {
		return err
	}
	defer locks.Release()
	if err := signature.GenerateKey(c.Key, c.Pub); err != nil {
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
func (VersionCmd) Help() string {
	return `Examples:
  diffah version
  diffah version --json | jq -r .version` + commonExamples("version", false)
}

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
