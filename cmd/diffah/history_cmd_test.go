package main

import (
	"strconv"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/rogpeppe/go-internal/testscript"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// sethistory SRC DST CMD...: write to the new OCI layout DST the image
// of layout SRC with a config history saying each layer was made by the
// next CMD (the layers, and so their digests, stay; the config changes),
// so scripts can see what inspect makes of created_by.
func cmdSetHistory(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: sethistory SRC DST CMD...")
	}
	idx, err := layout.ImageIndexFromPath(ts.MkAbs(args[0]))
	ts.Check(err)
	m, err := idx.IndexManifest()
	ts.Check(err)
	img, err := idx.Image(m.Manifests[0].Digest)
	ts.Check(err)
	cf, err := img.ConfigFile()
	ts.Check(err)
	cf = cf.DeepCopy()
	cf.History = nil
	for _, c := range args[2:] {
		cf.History = append(cf.History, v1.History{CreatedBy: c, Created: cf.Created})
	}
	img, err = mutate.ConfigFile(img, cf)
	ts.Check(err)
	p, err := layout.Write(ts.MkAbs(args[1]), empty.Index)
	ts.Check(err)
	ts.Check(p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})))
}

// gzipimage DIR SEED: write to DIR a one-layer OCI image whose layer (a
// file of noise from SEED) the gzip command compressed: a layer no
// recipe reproduces, for scripts about layers that ship whole.
func cmdGzipImage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gzipimage DIR SEED")
	}
	seed, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	l, err := gzipCLILayerOf(seed)
	ts.Check(err)
	ts.Check(writeLayoutOf(ts.MkAbs(args[0]), l))
}
