package resolve

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/internal/layout"
	"github.com/diffah/diffah/internal/spool"
	"github.com/diffah/diffah/sidecar"
)

func TestDependencyOrder(t *testing.T) {
	dg := func(s string) digest.Digest { return digest.FromString(s) }
	for _, c := range []struct {
		name  string
		tasks []string
		deps  map[string][]string
		want  []string
		err   string
	}{
		{"no deps keep the order", []string{"a", "b", "c"}, nil, []string{"a", "b", "c"}, ""},
		{"a source moves before its reader", []string{"b", "c", "a"}, map[string][]string{"b": {"a"}, "c": {"b"}}, []string{"a", "b", "c"}, ""},
		{"star", []string{"x", "y", "a", "z"}, map[string][]string{"x": {"a"}, "y": {"a"}, "z": {"a"}}, []string{"a", "x", "y", "z"}, ""},
		{"cycle", []string{"a", "b"}, map[string][]string{"a": {"b"}, "b": {"a"}}, nil, "depends on itself"},
		{"missing source", []string{"a"}, map[string][]string{"a": {"q"}}, nil, "which no image being resolved rebuilds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			order, err := dependencyOrder(len(c.tasks), func(i int) digest.Digest { return dg(c.tasks[i]) }, func(i int) []digest.Digest {
				var out []digest.Digest
				for _, d := range c.deps[c.tasks[i]] {
					out = append(out, dg(d))
				}
				return out
			})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range order {
				got = append(got, c.tasks[i])
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("order %v, want %v", got, c.want)
			}
		})
	}
}

// fleetImages: a ships layer L, b patches against L (of a), c against b's
// layer: skipping a skips b and then c, each saying why.
func fleetImages() *sidecar.Sidecar {
	l := func(s string) sidecar.Descriptor {
		return sidecar.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: digest.FromString(s), Size: 10}
	}
	patched := func(name, src, of string) sidecar.Blob {
		return sidecar.Blob{Descriptor: l(name), Role: sidecar.RoleLayer, DiffID: digest.FromString("u" + name), Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Patch,
			Patch: &sidecar.PatchRef{PatchSpec: sidecar.PatchSpec{Codec: sidecar.BundleTarCodec, Sources: []sidecar.Source{{Descriptor: l(src), DiffID: digest.FromString("u" + src), Target: of}}}}}}
	}
	im := func(name string, layer sidecar.Blob) sidecar.Image {
		return sidecar.Image{Name: name, Blobs: []sidecar.Blob{{Role: sidecar.RoleManifest}, {Role: sidecar.RoleConfig}, layer}}
	}
	return &sidecar.Sidecar{Images: []sidecar.Image{
		im("a", sidecar.Blob{Descriptor: l("A"), Role: sidecar.RoleLayer, DiffID: digest.FromString("uA"), Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}}),
		im("b", patched("B", "A", "a")),
		im("c", patched("C", "B", "b")),
		im("d", sidecar.Blob{Descriptor: l("D"), Role: sidecar.RoleLayer, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}}),
	}}
}

func TestSkipDependents(t *testing.T) {
	sc := fleetImages()
	r := &resolver{sc: sc}
	rep := &Report{}
	var works []*imageWork
	for i := range sc.Images {
		rep.Images = append(rep.Images, ImageReport{Name: sc.Images[i].Name})
		works = append(works, &imageWork{im: &sc.Images[i]})
	}
	found := []verdict{noBaseline, ready, ready, ready}
	kept, problems := r.skipDependents(works[1:], found, rep, []string{"a: no baseline"})
	if len(kept) != 1 || kept[0].im.Name != "d" {
		t.Fatalf("kept %d images, want only d", len(kept))
	}
	if !slices.Equal(found, []verdict{noBaseline, sourceSkipped, sourceSkipped, ready}) {
		t.Fatalf("verdicts %v", found)
	}
	if len(problems) != 3 || !strings.Contains(rep.Images[1].Reason, `of bundle image "a", which is not resolved`) || !strings.Contains(rep.Images[2].Reason, `of bundle image "b"`) {
		t.Fatalf("problems %q, reasons %q / %q", problems, rep.Images[1].Reason, rep.Images[2].Reason)
	}
	// With a resolved, nothing more is skipped.
	found = []verdict{ready, ready, ready, ready}
	rep = &Report{Images: make([]ImageReport, 4)}
	if kept, problems = r.skipDependents(works, found, rep, nil); len(kept) != 4 || len(problems) != 0 {
		t.Fatalf("kept %d, problems %q", len(kept), problems)
	}
}

// A written source layer is spooled uncompressed, checked against its
// diffID, shared by its readers and dropped after the last one.
func TestTargetSpools(t *testing.T) {
	dir := t.TempDir()
	content := []byte("a tar, say")
	cache := spool.NewCache(t.TempDir())
	defer cache.Close()
	ts := newTargetSpools(cache, dir)
	src := writtenLayer(t, dir, content)
	d := src.Digest
	reader := sidecar.Blob{Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Patch, Patch: &sidecar.PatchRef{PatchSpec: sidecar.PatchSpec{Sources: []sidecar.Source{src}}}}}
	ts.count(reader)
	ts.count(reader)
	if ts.rank(sidecar.Blob{Descriptor: src.Descriptor, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Ship}}) != 0 {
		t.Fatal("a source layer is not ranked first")
	}
	ts.done(d)
	if err := ts.wait(context.Background(), reader); err != nil {
		t.Fatal(err)
	}
	f1, err := ts.open(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f1.Reader())
	if !bytes.Equal(got, content) {
		t.Fatalf("spooled %q", got)
	}
	f2, _ := ts.open(context.Background(), src)
	if f1 != f2 {
		t.Fatal("two readers spooled the source twice")
	}
	ts.release(reader)
	if _, err := f1.ReadAt(make([]byte, 1), 0); err != nil {
		t.Fatalf("dropped while a reader was left: %v", err)
	}
	ts.release(reader)
	if _, err := f1.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("the spool outlived its last reader")
	}
	// A wrong diffID is an integrity error, not a wrong source.
	bad := src
	bad.DiffID = digest.FromString("other")
	if _, err := ts.open(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("wrong diffID: %v", err)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A chain of layers, each patched against the one before, rebuilt in
// order keeps one source spooled at a time.
func TestTargetSpoolsChain(t *testing.T) {
	dir := t.TempDir()
	cache := spool.NewCache(t.TempDir())
	defer cache.Close()
	ts := newTargetSpools(cache, dir)
	var srcs []sidecar.Source
	var readers []sidecar.Blob
	for i := range 5 {
		srcs = append(srcs, writtenLayer(t, dir, []byte(fmt.Sprintf("layer %d", i))))
		if i > 0 {
			readers = append(readers, sidecar.Blob{Descriptor: srcs[i].Descriptor, Decision: sidecar.Decision[sidecar.PatchRef]{Action: sidecar.Patch, Patch: &sidecar.PatchRef{PatchSpec: sidecar.PatchSpec{Sources: []sidecar.Source{srcs[i-1]}}}}})
			ts.count(readers[i-1])
		}
	}
	for i, r := range readers {
		ts.done(srcs[i].Digest)
		if _, err := ts.open(context.Background(), srcs[i]); err != nil {
			t.Fatal(err)
		}
		ts.release(r)
	}
	if ts.total != 4 || ts.peak != 1 || len(ts.spooled) != 0 {
		t.Fatalf("spooled %d, %d at once, %d left", ts.total, ts.peak, len(ts.spooled))
	}
}

// writtenLayer writes content gzipped into the layout dir, as a layer
// resolve has rebuilt, and returns it as a target-layer source of image a.
func writtenLayer(t *testing.T, dir string, content []byte) sidecar.Source {
	t.Helper()
	blob := gzipped(t, content)
	d := digest.FromBytes(blob)
	if err := os.MkdirAll(filepath.Dir(layout.BlobPath(dir, d)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.BlobPath(dir, d), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	return sidecar.Source{Descriptor: sidecar.Descriptor{Digest: d, Size: int64(len(blob))}, DiffID: digest.FromBytes(content), Target: "a"}
}
