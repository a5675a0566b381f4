package imgdiff

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
)

// displayName is the path a change is reported under: whiteouts are named by
// what they delete, so that they sort next to it.
func (e *entry) displayName() string {
	if e.typ == TypeWhiteout {
		return e.target
	}
	return e.name
}

// diffAttrs lists, in a fixed order, the attributes in which a and b differ.
// Semantic comparison leaves out timestamps and user/group names. Whiteouts
// carry no meaning beyond existing, and a hard link's header metadata is
// ignored by extraction, so only its target counts.
func diffAttrs(a, b *entry, semantic bool) []string {
	if a.typ != b.typ {
		return []string{"type"}
	}
	var d []string
	add := func(differs bool, name string) {
		if differs {
			d = append(d, name)
		}
	}
	switch a.typ {
	case TypeWhiteout:
		return nil
	case TypeHardlink:
		add(a.link != b.link, "link")
		return d
	}
	add(a.digest != b.digest, "content")
	add(a.mode != b.mode, "mode")
	add(a.uid != b.uid || a.gid != b.gid, "owner")
	add(!semantic && (a.uname != b.uname || a.gname != b.gname), "user")
	add(a.link != b.link, "link")
	add(a.special != b.special || a.devMajor != b.devMajor || a.devMinor != b.devMinor, "device")
	add(a.xattrs != b.xattrs, "xattrs")
	add(!semantic && !a.mtime.Equal(b.mtime), "mtime")
	add(!semantic && !a.atime.Equal(b.atime), "atime")
	add(!semantic && !a.ctime.Equal(b.ctime), "ctime")
	return d
}

// describe renders an entry for an Input cell: its identity first, then any
// attribute in extra that the base form does not show.
func (e *entry) describe(extra []string) string {
	if e == nil {
		return "-"
	}
	var s string
	perm := fmt.Sprintf("%04o %d:%d", e.mode, e.uid, e.gid)
	switch e.typ {
	case TypeFile:
		s = fmt.Sprintf("%s %s %dB", e.digest, perm, e.size)
	case TypeDir:
		s = "dir " + perm
	case TypeSymlink:
		s = fmt.Sprintf("-> %s %s", e.link, perm)
	case TypeHardlink:
		return "=> " + e.link
	case TypeSpecial:
		s = e.special
		if e.special == "char" || e.special == "block" {
			s += fmt.Sprintf(" %d,%d", e.devMajor, e.devMinor)
		}
		s += " " + perm
	case TypeWhiteout:
		if e.opaque {
			return "opaque whiteout"
		}
		return "whiteout"
	}
	for _, a := range extra {
		switch a {
		case "user":
			s += fmt.Sprintf(" user=%s:%s", e.uname, e.gname)
		case "xattrs":
			s += " xattrs{" + e.xattrs + "}"
		case "mtime":
			s += " mtime=" + fmtTime(e.mtime)
		case "atime":
			s += " atime=" + fmtTime(e.atime)
		case "ctime":
			s += " ctime=" + fmtTime(e.ctime)
		}
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Format(time.RFC3339Nano)
}

// compareEntries reports the differences between two sets of entries, keyed
// by name, tagging each change with layer.
func compareEntries(a, b map[string]*entry, layer int, semantic bool) []Change {
	var out []Change
	for _, n := range unionKeys(a, b) {
		e0, e1 := a[n], b[n]
		switch {
		case e1 == nil:
			out = append(out, Change{Type: e0.typ, Layer: layer, Name: e0.displayName(),
				Input0: e0.describe(nil), Input1: "-", Detail: DetailRemoved})
		case e0 == nil:
			out = append(out, Change{Type: e1.typ, Layer: layer, Name: e1.displayName(),
				Input0: "-", Input1: e1.describe(nil), Detail: DetailAdded})
		default:
			d := diffAttrs(e0, e1, semantic)
			if len(d) == 0 {
				continue
			}
			out = append(out, Change{Type: e1.typ, Layer: layer, Name: e1.displayName(),
				Input0: e0.describe(d), Input1: e1.describe(d), Detail: strings.Join(d, ", ")})
		}
	}
	return out
}

// layerFacts is what strict mode compares of a layer besides its files.
type layerFacts struct {
	digest, diffID v1.Hash
	size           int64
	mediaType      string
	annotations    map[string]string
}

// factsOf reads layer i's descriptor from the manifest, which is what the
// image says and costs nothing; only a manifest that does not list every
// layer sends us to the layer itself (which may have to compress it to know
// its digest).
func factsOf(s *side, i int) (layerFacts, error) {
	var f layerFacts
	var err error
	if f.diffID, err = s.diffID(i); err != nil {
		return f, err
	}
	if len(s.manifest.Layers) == len(s.layers) {
		d := s.manifest.Layers[i]
		f.digest, f.size, f.mediaType, f.annotations = d.Digest, d.Size, string(d.MediaType), d.Annotations
		return f, nil
	}
	l := s.layers[i]
	wrap := func(what string, err error) error {
		return fault.Wrap(fault.Env, fmt.Errorf("imgdiff: input-%d layer %d: %s: %w", s.n, i, what, err))
	}
	if f.digest, err = l.Digest(); err != nil {
		return f, wrap("digest", err)
	}
	if f.size, err = l.Size(); err != nil {
		return f, wrap("size", err)
	}
	mt, err := l.MediaType()
	if err != nil {
		return f, wrap("media type", err)
	}
	f.mediaType = string(mt)
	return f, nil
}

func (f layerFacts) String() string {
	return fmt.Sprintf("%s %dB %s", f.digest, f.size, f.mediaType)
}

// compareLayers is strict mode's walk: layers are paired by index; a pair
// with equal digests or diffIDs holds the same files and is not read.
func compareLayers(ctx context.Context, x *indexer, s0, s1 *side) ([]Change, error) {
	var out []Change
	n := max(len(s0.layers), len(s1.layers))
	for i := 0; i < n; i++ {
		var f0, f1 *layerFacts
		for _, p := range []struct {
			s *side
			f **layerFacts
		}{{s0, &f0}, {s1, &f1}} {
			if i < len(p.s.layers) {
				f, err := factsOf(p.s, i)
				if err != nil {
					return nil, err
				}
				*p.f = &f
			}
		}
		switch {
		case f0 == nil:
			out = append(out, Change{Type: TypeLayer, Layer: i, Name: "layer", Input0: "-", Input1: f1.String(), Detail: DetailAdded})
		case f1 == nil:
			out = append(out, Change{Type: TypeLayer, Layer: i, Name: "layer", Input0: f0.String(), Input1: "-", Detail: DetailRemoved})
		default:
			fields := []struct{ name, v0, v1 string }{
				{"digest", f0.digest.String(), f1.digest.String()},
				{"diffID", f0.diffID.String(), f1.diffID.String()},
				{"size", fmt.Sprint(f0.size), fmt.Sprint(f1.size)},
				{"mediaType", f0.mediaType, f1.mediaType},
			}
			for _, f := range fields {
				if f.v0 != f.v1 {
					out = append(out, Change{Type: TypeLayer, Layer: i, Name: f.name, Input0: f.v0, Input1: f.v1, Detail: DetailChanged})
				}
			}
			out = append(out, mapChanges(TypeLayer, i, "annotations.", f0.annotations, f1.annotations)...)
			if f0.digest == f1.digest || f0.diffID == f1.diffID {
				continue
			}
		}
		var ix [2]map[string]*entry
		err := both(ctx, s0, s1, func(ctx context.Context, s *side) error {
			var err error
			ix[s.n], err = indexOrEmpty(ctx, x, s, i)
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, compareEntries(ix[0], ix[1], i, false)...)
	}
	return out, nil
}

func indexOrEmpty(ctx context.Context, x *indexer, s *side, i int) (map[string]*entry, error) {
	if i >= len(s.layers) {
		return nil, nil
	}
	ix, err := x.index(ctx, s, i)
	if err != nil {
		return nil, err
	}
	return ix.byName, nil
}

// mapChanges compares two string maps key by key, naming each change
// prefix+key.
func mapChanges(typ string, layer int, prefix string, a, b map[string]string) []Change {
	var out []Change
	for _, k := range unionKeys(a, b) {
		v0, ok0 := a[k]
		v1, ok1 := b[k]
		switch {
		case !ok0:
			out = append(out, Change{Type: typ, Layer: layer, Name: prefix + k, Input0: "-", Input1: v1, Detail: DetailAdded})
		case !ok1:
			out = append(out, Change{Type: typ, Layer: layer, Name: prefix + k, Input0: v0, Input1: "-", Detail: DetailRemoved})
		case v0 != v1:
			out = append(out, Change{Type: typ, Layer: layer, Name: prefix + k, Input0: v0, Input1: v1, Detail: DetailChanged})
		}
	}
	return out
}

// unionKeys returns the keys of a and b, sorted, each once.
func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
