package deliver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"io"
	"os"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/inspect"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/unpack"
)

// Describe builds inspect's document for r: a JSON stream of plans or a
// delta archive (told apart by its first bytes). path, when a regular
// file, gives the archive's exact size. Plans are described with their
// patches computed (packed into nothing, as export --dry-run does) when
// the images they name are at hand; else with patched layers at full
// size, said so. verifyKey, when set, must have signed the archive.
func Describe(ctx context.Context, r io.Reader, path string, verifyKey *ecdsa.PublicKey, o pack.Options) (*inspect.Doc, error) {
	r, isJSON, err := sniff(r)
	if err != nil {
		return nil, err
	}
	if isJSON {
		plans, err := ReadPlans(nil, r)
		if err != nil {
			return nil, err
		}
		o.SignKey = nil
		doc, err := DryRun(ctx, plans, o)
		if err != nil {
			if o.Log != nil {
				o.Log.Info("patch sizes not computed", "err", err)
			}
			return inspect.FromPlans(plans), nil
		}
		doc.Source, doc.Version, doc.Tool = "plan", plans[0].Version, ""
		return doc, nil
	}
	h, configs, err := unpack.HeadConfigs(r, unpack.Options{VerifyKey: verifyKey})
	if err != nil {
		return nil, err
	}
	doc := inspect.FromSidecar(h.Sidecar, h.Signed, h.KeyID, verifyKey != nil)
	// What made each layer: the history of the configs the archive ships
	// (a config reused from the baseline is not in it).
	for _, im := range h.Sidecar.Images {
		for _, b := range im.Blobs {
			if raw, ok := configs[b.Digest]; ok && b.Role == sidecar.RoleConfig {
				doc.AddHistory(im.Name, raw)
			}
		}
	}
	if st, err := os.Stat(path); path != "" && err == nil && st.Mode().IsRegular() {
		doc.ArchiveBytes, doc.ArchiveExact = st.Size(), true
	}
	return doc, nil
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

// AddHistory tells, per layer of each plan's target, what made it (the
// config history), reading each target's config; a target not at hand
// is left without.
func AddHistory(ctx context.Context, doc *inspect.Doc, plans []*plan.Plan, o imgref.Options) {
	for _, p := range plans {
		r, err := imgref.Parse(p.Target.Ref)
		if err != nil {
			continue
		}
		o.Platform = p.Target.Platform
		img, err := imgref.Open(ctx, r, o)
		if err != nil {
			continue
		}
		if raw, err := img.RawConfigFile(); err == nil {
			doc.AddHistory(p.Name, raw)
		}
		img.Close()
	}
}
