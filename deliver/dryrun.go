package deliver

import (
	"context"
	"io"

	"github.com/diffah/diffah/inspect"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
)

// DryRun packs plans into nothing and describes what would ship (export
// --dry-run): every patch is computed, nothing is written, and the
// document's ArchiveBytes is the exact size the archive would have (the
// same inputs give the same bytes; with o.SignKey, signature included).
// Each layer is told what made it when its target's config is at hand.
func DryRun(ctx context.Context, plans []*plan.Plan, o pack.Options) (*inspect.Doc, error) {
	rep, err := pack.Write(ctx, io.Discard, plans, o)
	if err != nil {
		return nil, err
	}
	doc := inspect.FromSidecar(rep.Sidecar, o.SignKey != nil, "", false)
	doc.Source, doc.ArchiveBytes, doc.ArchiveExact = "dry run", rep.Bytes, true
	AddHistory(ctx, doc, plans, o.Image)
	return doc, nil
}
