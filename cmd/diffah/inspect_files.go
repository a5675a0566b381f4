package main

import (
	"fmt"
	"io"

	"github.com/diffah/diffah/inspect"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
)

// describeComputed describes plans with their patches computed: packed
// into nothing, as a dry run, so what each file of a patched layer costs
// is known, every file of it (inspect --files on a plan). Nothing is
// written.
func describeComputed(g *Globals, s stdio, r RegistryFlags, plans []*plan.Plan) (*inspect.Doc, error) {
	rep, err := pack.Write(g.ctx, io.Discard, plans, pack.Options{Image: r.options(""), Tool: toolName(), Log: g.log, Progress: g.progressTo(s.err)})
	if err != nil {
		return nil, fmt.Errorf("inspect --files: computing the plan's patches (every image the plan names must be at hand): %w", err)
	}
	doc := inspect.FromSidecar(rep.Sidecar, false, "", false)
	doc.Source, doc.Version, doc.Tool = "plan", plans[0].Version, ""
	// The sidecar lists the costliest files of each layer; the dry run
	// knows every one of a tar patch kept.
	for _, p := range rep.Patches {
		if p.Used && p.Codec == "" {
			if fc := pack.FileCosts(p.Stats.Costs, p.PatchSize, 0); fc != nil {
				doc.SetFileCosts(p.Layer, fc)
			}
		}
	}
	return doc, nil
}
