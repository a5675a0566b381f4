// Package plan owns the delta plan: the JSON document that says, for every
// blob of a target image, how the consumer will get it (reused from the
// baseline it already holds, shipped whole, or rebuilt from a patch) and
// why. Compute makes a plan from a target and a baseline; Parse and Decoder
// read plans back strictly. A plan is what `diffah plan` prints and what
// `diffah pack` reads; several plans in one JSON stream make a bundle.
package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/internal/strictjson"
	"github.com/diffah/diffah/recompress"
	"github.com/diffah/diffah/sidecar"
)

const (
	// Kind identifies a plan document.
	Kind = "diffah-plan"
	// Major and Minor are the plan format version this package writes.
	Major = 1
	Minor = MinorTarV4
	// MaxSize bounds one plan document (it embeds the target manifest).
	MaxSize = 64 << 20
)

// Intra-layer modes.
const (
	IntraAuto = "auto"
	IntraOff  = "off"
)

// Plan is one image's delta plan.
type Plan struct {
	Kind    string `json:"kind"`
	Version string `json:"version"`
	// Name identifies the image inside a bundle.
	Name     string    `json:"name"`
	Target   Target    `json:"target"`
	Baseline *Baseline `json:"baseline,omitempty"`
	// IntraLayer is the mode the plan was computed with (auto or off).
	IntraLayer string `json:"intraLayer"`
	// Blobs lists the manifest, the config and every layer in manifest
	// order.
	Blobs  []Blob `json:"blobs"`
	Totals Totals `json:"totals"`
}

// Target is the image to rebuild at the consumer.
type Target struct {
	Ref         string             `json:"ref"`
	Platform    string             `json:"platform,omitempty"`
	IndexDigest digest.Digest      `json:"indexDigest,omitempty"`
	Manifest    sidecar.Descriptor `json:"manifest"`
	// Raw is the manifest, byte for byte (base64 in JSON: `jq -r
	// .target.raw | base64 -d`).
	Raw    []byte        `json:"raw"`
	Config digest.Digest `json:"config"`
}

// Baseline is the image the consumer is assumed to hold.
type Baseline struct {
	Ref            string        `json:"ref,omitempty"`
	ManifestFile   string        `json:"manifestFile,omitempty"`
	ManifestDigest digest.Digest `json:"manifestDigest"`
	// Layers lists the baseline's layers (patch sources are chosen among
	// them; resolve checks the consumer's baseline has them).
	Layers []sidecar.Source `json:"layers"`
	// Config is the baseline's config digest.
	Config digest.Digest `json:"config"`
}

// Blob is one target blob and the decision for it.
type Blob struct {
	sidecar.Descriptor
	Role   string        `json:"role"`
	DiffID digest.Digest `json:"diffID,omitempty"`
	Decision
}

// Decision is what the plan decided for a blob, and why (the record the
// sidecar carries too; pack may revise it).
type Decision = sidecar.Decision[Patch]

// Patch is the plan for rebuilding a layer from baseline layers. pack
// computes the payload; when the payload is not smaller than the blob, pack
// ships the blob instead.
type Patch = sidecar.PatchSpec

// Totals sums the plan for people and for `jq`.
type Totals struct {
	Blobs int `json:"blobs"`
	// TargetBytes is the size of every blob of the target image.
	TargetBytes int64 `json:"targetBytes"`
	Shipped     int   `json:"shipped"`
	ShipBytes   int64 `json:"shipBytes"`
	Reused      int   `json:"reused"`
	ReuseBytes  int64 `json:"reuseBytes"`
	// Patched counts layers planned as patches; PatchBlobBytes is their
	// full size (what a layer-level delta would ship for them).
	Patched        int   `json:"patched"`
	PatchBlobBytes int64 `json:"patchBlobBytes"`
}

// Sum recomputes the totals from the blobs.
func (p *Plan) Sum() {
	var t Totals
	for _, b := range p.Blobs {
		t.Blobs++
		t.TargetBytes += b.Size
		switch b.Action {
		case sidecar.Ship:
			t.Shipped++
			t.ShipBytes += b.Size
		case sidecar.Reuse:
			t.Reused++
			t.ReuseBytes += b.Size
		case sidecar.Patch:
			t.Patched++
			t.PatchBlobBytes += b.Size
		}
	}
	p.Totals = t
}

// Marshal validates and encodes the plan: indented, one trailing newline,
// so concatenated plans form a JSON stream.
func (p *Plan) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("plan: refusing to write an invalid plan: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse reads exactly one plan from data.
func Parse(data []byte) (*Plan, error) {
	d := NewDecoder(bytes.NewReader(data))
	p, err := d.Next()
	if errors.Is(err, io.EOF) {
		return nil, fault.Errorf(fault.Usage, "plan: input is empty; expected a plan from `diffah plan`")
	}
	if err != nil {
		return nil, err
	}
	if _, err := d.Next(); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, fault.Errorf(fault.Usage, "plan: input holds more than one plan")
		}
		return nil, err
	}
	return p, nil
}

// Decoder reads a stream of concatenated plans.
type Decoder struct {
	r   io.Reader
	dec *json.Decoder
	n   int
}

// NewDecoder returns a decoder reading plans from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, dec: json.NewDecoder(r)}
}

// Next returns the next plan, or io.EOF at the end of the stream.
func (d *Decoder) Next() (*Plan, error) {
	d.n++
	var raw json.RawMessage
	if err := d.dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fault.Errorf(fault.Usage, "plan %d: not valid JSON: %w (is the input a plan from `diffah plan`?)", d.n, err)
	}
	if len(raw) > MaxSize {
		return nil, fault.Errorf(fault.Usage, "plan %d: larger than %d bytes", d.n, MaxSize)
	}
	p, err := parseOne(raw)
	if err != nil {
		return nil, fault.Wrap(fault.Usage, fmt.Errorf("plan %d: %w", d.n, err))
	}
	return p, nil
}

func parseOne(raw []byte) (*Plan, error) {
	var head struct {
		Kind    string `json:"kind"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if head.Kind != Kind {
		return nil, fmt.Errorf("kind is %q, want %q: not a diffah plan", head.Kind, Kind)
	}
	major, minor, err := sidecar.ParseVersion(head.Version)
	if err != nil {
		return nil, err
	}
	if major != Major {
		return nil, fmt.Errorf("unsupported plan version %s (this diffah reads %d.x); re-run `diffah plan` with this diffah", head.Version, Major)
	}
	var p Plan
	if err := strictjson.Unmarshal(raw, &p, minor > Minor); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks the plan's consistency: the manifest bytes match their
// digest, roles and actions are known, totals add up.
func (p *Plan) Validate() error {
	if p.Kind != Kind {
		return fmt.Errorf("kind is %q, want %q", p.Kind, Kind)
	}
	if !sidecar.ValidName(p.Name) {
		return fmt.Errorf("image name %q is not valid (letters, digits and ._/:@- only)", p.Name)
	}
	if p.IntraLayer != IntraAuto && p.IntraLayer != IntraOff {
		return fmt.Errorf("intraLayer %q is not auto or off", p.IntraLayer)
	}
	m := p.Target.Manifest
	if err := checkDesc(m, "target manifest"); err != nil {
		return err
	}
	if err := errors.Join(optDigest("target index", p.Target.IndexDigest), optDigest("target config", p.Target.Config)); err != nil {
		return err
	}
	if b := p.Baseline; b != nil {
		if err := errors.Join(optDigest("baseline manifest", b.ManifestDigest), optDigest("baseline config", b.Config)); err != nil {
			return err
		}
		for i, l := range b.Layers {
			if err := checkSource(l, fmt.Sprintf("baseline layer %d", i)); err != nil {
				return err
			}
		}
	}
	if got := digest.FromBytes(p.Target.Raw); got != m.Digest || int64(len(p.Target.Raw)) != m.Size {
		return fmt.Errorf("target manifest bytes are %s (%d bytes), plan says %s (%d bytes)", got, len(p.Target.Raw), m.Digest, m.Size)
	}
	if len(p.Blobs) < 2 || p.Blobs[0].Role != sidecar.RoleManifest || p.Blobs[1].Role != sidecar.RoleConfig {
		return errors.New("blobs must start with the manifest and the config")
	}
	if p.Blobs[0].Descriptor != m || p.Blobs[0].Action != sidecar.Ship {
		return errors.New("first blob must be the shipped target manifest")
	}
	if p.Blobs[1].Digest != p.Target.Config {
		return fmt.Errorf("config blob %s is not the target config %s", p.Blobs[1].Digest, p.Target.Config)
	}
	for i, b := range p.Blobs {
		if err := checkDesc(b.Descriptor, fmt.Sprintf("blob %d", i)); err != nil {
			return err
		}
		if err := optDigest(fmt.Sprintf("blob %d diffID", i), b.DiffID); err != nil {
			return err
		}
		if i >= 2 && b.Role != sidecar.RoleLayer {
			return fmt.Errorf("blob %s: role %q, want layer", b.Digest, b.Role)
		}
		switch b.Action {
		case sidecar.Ship, sidecar.Reuse:
			if b.Patch != nil {
				return fmt.Errorf("blob %s: action %s with a patch", b.Digest, b.Action)
			}
		case sidecar.Patch:
			if b.Patch == nil || len(b.Patch.Sources) == 0 || b.DiffID == "" {
				return fmt.Errorf("blob %s: patch without sources or diffID", b.Digest)
			}
			if p.Baseline == nil {
				return fmt.Errorf("blob %s: patch without a baseline", b.Digest)
			}
			if len(b.Patch.Sources) > 64 {
				return fmt.Errorf("blob %s: patch has %d sources (.blobs[%d].patch.sources: 1 to 64 allowed)", b.Digest, len(b.Patch.Sources), i)
			}
			for j, src := range b.Patch.Sources {
				if err := checkSource(src, fmt.Sprintf("blob %s patch source %d", b.Digest, j)); err != nil {
					return err
				}
			}
			// The one recipe parser; pack would otherwise find a bad
			// recipe only after compressing.
			if _, err := recompress.ParseRecipe(b.Patch.Recipe); err != nil {
				return fmt.Errorf("blob %s (.blobs[%d].patch.recipe): %v", b.Digest, i, err)
			}
		default:
			return fmt.Errorf("blob %s: unknown action %q", b.Digest, b.Action)
		}
		if b.Action == sidecar.Reuse && p.Baseline == nil {
			return fmt.Errorf("blob %s: reuse without a baseline", b.Digest)
		}
		if b.Recipe != nil && (b.Action != sidecar.Reuse || b.Role != sidecar.RoleLayer || b.DiffID == "") {
			return fmt.Errorf("blob %s: a recipe belongs only to a reused layer with a diffID", b.Digest)
		}
	}
	want := p.Totals
	p.Sum()
	if want != p.Totals {
		got := p.Totals
		p.Totals = want
		return fmt.Errorf("totals %+v do not match the blobs (%+v)", want, got)
	}
	return nil
}

// Plans are user input: their errors are usage errors (exit 2), so the
// integrity kind layout's checks carry is dropped here (%v, not %w).

// checkDesc checks a descriptor's digest (layout.CheckDigest, the one
// check before a digest names a file) and size (layout.CheckSize, so the
// totals cannot overflow).
func checkDesc(d sidecar.Descriptor, what string) error {
	if err := layout.CheckDigest(d.Digest, what); err != nil {
		return fmt.Errorf("%v", err)
	}
	if err := layout.CheckSize(d.Size, what+" "+d.Digest.String()); err != nil {
		return fmt.Errorf("%v", err)
	}
	return nil
}

// optDigest checks a digest that may be absent ("").
func optDigest(what string, d digest.Digest) error {
	if d == "" {
		return nil
	}
	if err := layout.CheckDigest(d, what); err != nil {
		return fmt.Errorf("%v", err)
	}
	return nil
}

func checkSource(s sidecar.Source, what string) error {
	if err := checkDesc(s.Descriptor, what); err != nil {
		return err
	}
	return optDigest(what+" diffID", s.DiffID)
}
