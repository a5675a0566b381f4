package main

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/diffah/diffah/artifact"
	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
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
func (PlanCmd) Help() string {
	return `Writes a JSON plan to stdout: for every blob of the target, whether it is
reused from the baseline, shipped whole, or rebuilt from a patch, and why.

Examples:
  diffah plan --target oci:./app-v2 --baseline oci:./app-v1 > plan.json
  diffah plan --target docker://reg.local/app:2 --baseline docker://reg.local/app:1 | jq .totals
  diffah plan --target docker-daemon:example.com/app:2 --baseline docker-daemon:example.com/app:1 > plan.json   (Docker/Podman; DOCKER_HOST)
  diffah plan --target oci:./app-v2 --baseline-manifest v1-manifest.json --intra-layer off
  diffah plan --target docker://reg.local/app:2 --baseline docker://reg.local/app:1 --reused-recipes off   (sites load from the registry: skip reading reused layers)
  diffah plan --platform linux/arm64 --jobs 2 --target oci:./multi-v2 --baseline oci:./multi-v1
  { diffah plan --target oci:./a-v2 --baseline oci:./a-v1 --name a;
    diffah plan --target oci:./b-v2 --baseline oci:./b-v1 --name b; } | diffah pack > bundle.dlt
  # a service new to the site: in a bundle, what the other baselines hold
  # is reused or patched from them
  { diffah plan --target oci:./a-v2 --baseline oci:./a-v1 --name a;
    diffah plan --target oci:./new-v1 --no-baseline --name new; } | diffah pack > bundle.dlt` + commonExamples("plan", true)
}

// Run computes the plan.
func (c *PlanCmd) Run(g *Globals, s stdio) error {
	p, err := c.compute(g)
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

func (c *PlanCmd) compute(g *Globals) (*plan.Plan, error) {
	if c.Baseline == "" && c.BaselineManifest == "" && !c.NoBaseline {
		return nil, fault.WithHint(fault.Errorf(fault.Usage, "plan: no baseline: give --baseline REF or --baseline-manifest FILE (or --no-baseline for an image the site lacks)"),
			fault.Usage, "the baseline is the image the receiving site already holds")
	}
	opts := c.options(c.Platform)
	tref, err := imgref.Parse(c.Target)
	if err != nil {
		return nil, fmt.Errorf("--target: %w", err)
	}
	target, err := imgref.Open(g.ctx, tref, opts)
	if err != nil {
		return nil, fmt.Errorf("--target: %w", err)
	}
	defer target.Close()
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
		bimg, err := imgref.Open(g.ctx, bref, bopts)
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
	name := c.Name
	if name == "" {
		name = defaultName(tref)
	}
	return plan.Compute(g.ctx, plan.Input{Ref: c.Target, Platform: target.Platform, IndexDigest: target.IndexDigest, Image: target},
		base, plan.Options{Name: name, IntraLayer: c.IntraLayer, ReusedRecipes: c.ReusedRecipes, Jobs: c.Jobs, Log: g.log})
}

// defaultName derives an image name from a reference: the last path
// element of the repository or directory.
func defaultName(r imgref.Ref) string {
	p := r.Path
	if !r.Local() {
		p, _, _ = strings.Cut(p, "@")
		if i := strings.LastIndex(p, ":"); i > strings.LastIndex(p, "/") {
			p = p[:i]
		}
	}
	n := filepath.Base(strings.TrimSuffix(p, "/"))
	n = strings.TrimSuffix(n, filepath.Ext(n))
	var b strings.Builder
	for _, c := range n {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-", c) {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 || !isAlnum(b.String()[0]) {
		return "image"
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// PackCmd is `diffah pack`.
type PackCmd struct {
	Plans    []string `arg:"" optional:"" sep:"none" help:"Plan files (default: a JSON stream of plans on stdin)." type:"existingfile" placeholder:"PLAN"`
	Output   string   `short:"o" help:"Write the archive to FILE (atomically) instead of stdout, or push it to a registry as an OCI artifact (docker://HOST/REPO:TAG)." placeholder:"FILE|docker://REF"`
	Compress string   `help:"Compress the archive as a whole: none or zstd (default: ${default})." default:"none" enum:"none,zstd"`
	SignKey  string   `help:"Sign the archive with this ECDSA P-256 private key (PKCS#8 PEM)." type:"existingfile" placeholder:"KEY.pem"`
	Jobs     int      `help:"Parallel workers (default: number of CPUs)." placeholder:"N"`
	// Independent is for sites that may not hold every baseline of a
	// bundle at resolve time.
	Independent bool `help:"Keep each image to its own baseline (by default an image of a bundle reuses and patches from the other images' baselines too, and a layer may be patched against layers the archive rebuilds before it; the image then needs those baselines and images at resolve)."`
	RegistryFlags
	LockFlags
}

// Help adds examples to --help.
func (PackCmd) Help() string {
	return `Reads plans and streams the delta archive: a POSIX tar whose first entry,
diffah.json, pins the digest of every other entry. Same inputs, same bytes.

Examples:
  diffah pack < plan.json > /media/usb/app.dlt
  diffah pack a.json b.json --output bundle.dlt --compress zstd --jobs 2
  diffah pack --sign-key vendor.key < plan.json | split -b 4000m - app.dlt.part.
  diffah pack -o docker://registry.internal/deltas:app-1-2 < plan.json
  cat a.json b.json | diffah pack --independent > bundle.dlt   # each image resolves alone
  diffah pack --wait -o app.dlt < plan.json   # another diffah writing app.dlt: wait for it (default: refuse, exit 3)

In a bundle, a blob one image would ship that another image's baseline holds
is reused from that baseline, and a layer may be patched against the other
baselines' layers; inspect shows which (the "from" column). Such an image
then needs those baselines at resolve time; --independent avoids that.
A layer may also be patched against a layer the archive rebuilds before it
(another image's new layer, or an earlier one of the same image), so a
binary that 50 services share travels once; inspect marks such a source
"new layer of IMAGE", and that image must resolve too. --independent turns
this off as well: every image then resolves alone, as in:
  { diffah plan --name a --target oci:./a-v2 --baseline oci:./a-v1
    diffah plan --name b --target oci:./b-v2 --baseline oci:./b-v1; } | diffah pack --independent -o bundle.dlt` + commonExamples("pack", true)
}

// Run packs.
func (c *PackCmd) Run(g *Globals, s stdio) error {
	plans, err := readPlans(c.Plans, s.in)
	if err != nil {
		return err
	}
	key, err := loadSignKey(c.SignKey)
	if err != nil {
		return err
	}
	write := func(w io.Writer) error {
		rep, err := pack.Write(g.ctx, w, plans, pack.Options{Compress: c.Compress, Jobs: c.Jobs, SignKey: key,
			Image: c.options(""), Tool: toolName(), Log: g.log, Progress: g.progressTo(s.err), Independent: c.Independent})
		if err == nil {
			g.log.Info("archive written", "bytes", rep.Bytes, "entries", len(rep.Sidecar.Entries))
		}
		return err
	}
	if strings.HasPrefix(c.Output, "docker://") {
		return pushArchive(g, s, c.Output, c.RegistryFlags, write)
	}
	return writeOutput(g, c.LockFlags, c.Output, s.out, "a delta archive", write)
}

func loadSignKey(path string) (*ecdsa.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	k, err := signature.LoadPrivateKey(path)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w", err)
	}
	return k, nil
}

func readPlans(files []string, stdin io.Reader) ([]*plan.Plan, error) {
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
		if isTerminalReader(stdin) {
			return nil, fault.WithHint(fault.Errorf(fault.Usage, "pack: no plan given and stdin is a terminal"), fault.Usage,
				"pipe a plan in (diffah plan ... | diffah pack) or name plan files")
		}
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

func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && isTerminal(f)
}

// sniff peeks at the start of r to tell a plan (JSON) from an archive.
func sniff(r io.Reader) (io.Reader, bool, error) {
	buf := make([]byte, 512)
	n, err := io.ReadFull(r, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, false, fault.Errorf(fault.Env, "reading input: %w", err)
	}
	head := bytes.TrimLeft(buf[:n], " \t\r\n")
	isJSON := len(head) > 0 && head[0] == '{'
	return io.MultiReader(bytes.NewReader(buf[:n]), r), isJSON, nil
}

// pushArchive packs into a pipe and pushes the stream as an OCI artifact.
func pushArchive(g *Globals, s stdio, out string, rf RegistryFlags, write func(io.Writer) error) error {
	ref, err := imgref.Parse(out)
	if err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if r := recover(); r != nil {
				err = fault.Panic(r, debug.Stack())
			}
			pw.CloseWithError(err)
			done <- err
		}()
		err = write(pw)
	}()
	pushed, perr := artifact.Push(g.ctx, ref, pr, rf.options(""))
	pr.CloseWithError(perr)
	if err := <-done; err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("-o %s: %w", out, perr)
	}
	fmt.Fprintf(s.err, "pushed %s: archive %s (%d bytes), manifest %s\n", out, pushed.Blob, pushed.Size, pushed.Manifest)
	return nil
}
