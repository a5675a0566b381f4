package deliver

import (
	"context"
	"io"

	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
)

// DryRun packs plans into nothing: every patch is computed, nothing is
// written, and the report's Bytes is the exact size the archive would
// have (the same inputs give the same bytes; with o.SignKey, signature
// included).
func DryRun(ctx context.Context, plans []*plan.Plan, o pack.Options) (*pack.Report, error) {
	return pack.Write(ctx, io.Discard, plans, o)
}
