// Package imgdiff owns the file-level comparison of two container images
// behind `diffah diff`: what differs in their manifests, configs, layers and
// the files inside those layers, rendered as a sorted table or a stable JSON
// document, optionally with the differing files copied out for `diff -ur`.
//
// Two modes exist because reproducible-builds users ask two questions. Strict
// mode (the default) asks "are these the same bytes?" and reports every
// difference, layer by layer. Semantic mode asks "do these behave the same?":
// it flattens each image into one filesystem, and ignores timestamps, layer
// boundaries, compression and naming noise.
//
// Layer contents are streamed and hashed; no file content is held in memory.
package imgdiff

import (
	"context"
	"fmt"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
)

// Change types. The set is deliberately small so that scripts can switch on it.
const (
	TypeManifest = "Manifest" // a manifest field: media types, annotations, config descriptor
	TypeConfig   = "Config"   // a field of the image config, named by its JSON path
	TypeLayer    = "Layer"    // a layer descriptor field, or a layer added/removed (strict mode only)
	TypeFile     = "File"     // a regular file
	TypeDir      = "Dir"      // a directory
	TypeSymlink  = "Symlink"  // a symbolic link
	TypeHardlink = "Hardlink" // a hard link entry of a layer tar
	TypeSpecial  = "Special"  // a character or block device, a FIFO, or an unknown tar type
	TypeWhiteout = "Whiteout" // an OCI whiteout (.wh.NAME) or opaque whiteout (.wh..wh..opq), strict mode only
)

// Details of a Change. Entry changes may list several attributes, comma-separated
// in a fixed order (see attrOrder).
const (
	DetailAdded   = "added"   // present only on side 1
	DetailRemoved = "removed" // present only on side 0
	DetailChanged = "changed" // a manifest, config or layer field with different values
)

// NoLayer is Change.Layer for changes that do not belong to one layer:
// manifest, config, and every file change in semantic mode.
const NoLayer = -1

// Options selects how images are compared.
type Options struct {
	// Semantic compares what the images do rather than their bytes: each image's
	// layers are flattened into one filesystem (whiteouts applied), and
	// timestamps (file mtime/atime/ctime, config `created` and history),
	// user and group names (numeric ids still count), layer boundaries,
	// compression, media types, and the annotations and labels that name or
	// date an image (org.opencontainers.image.created, .ref.name, .base.name,
	// io.containerd.image.name, org.label-schema.build-date) are ignored;
	// null and empty config values count as absent. Config fields compared: architecture, os, os.version, variant and
	// config.{Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes,
	// Labels, StopSignal, Shell, Healthcheck, OnBuild}.
	Semantic bool

	// ReportDir, when set, receives the differing regular files of each side,
	// as they are in that side's flattened filesystem, under
	// ReportDir/input-0/PATH and ReportDir/input-1/PATH, ready for `diff -ur`.
	// input-0 and input-1 must not exist yet. Entries whose names climb out of
	// the root (`../x`) are refused with an Integrity error.
	ReportDir string
}

// Change is one difference between the two images.
type Change struct {
	Type string // one of the Type* constants
	// Layer is the index of the layer pair the change was found in (strict
	// mode), or NoLayer.
	Layer int
	// Name is the path of a filesystem entry ("/etc/passwd"; for whiteouts the
	// path that is deleted), the JSON path of a config field
	// ("config.Env.PATH"), or the name of a manifest or layer field.
	Name string
	// Input0 and Input1 describe the entry or value on each side, "-" when
	// absent. Entries read like "sha256:HEX 0644 0:0 1234B"; digests are in
	// full here and abbreviated by WriteText.
	Input0 string
	Input1 string
	// Detail says what differs: "added", "removed", "changed", or for entries
	// a comma-separated list of attributes among type, content, mode, owner
	// (uid:gid), user (user and group names; strict mode only), link (symlink
	// or hard link target), device, xattrs (PAX records other than times and
	// names), mtime, atime, ctime (strict mode only). When the type differs,
	// Type is side 1's.
	Detail string
}

// Summary counts the changes.
type Summary struct {
	Total   int            `json:"total"`
	ByType  map[string]int `json:"byType"`
	Added   int            `json:"added"`
	Removed int            `json:"removed"`
	Changed int            `json:"changed"` // everything neither added nor removed
}

// Result is the outcome of Compare. Changes are sorted (see sortChanges).
type Result struct {
	Semantic bool
	Changes  []Change
	Equal    bool
	Summary  Summary
}

// side is what Compare needs of one image, fetched once.
type side struct {
	n        int // 0 or 1, for messages
	img      v1.Image
	manifest *v1.Manifest
	config   []byte
	layers   []v1.Layer
	// diffIDs come from the config's rootfs when it lists one per layer:
	// asking a layer for its DiffID may decompress and hash the whole blob.
	diffIDs []v1.Hash
}

// diffID returns the diffID of layer i, from the config when it has one.
func (s *side) diffID(i int) (v1.Hash, error) {
	if i < len(s.diffIDs) {
		return s.diffIDs[i], nil
	}
	id, err := s.layers[i].DiffID()
	if err != nil {
		return v1.Hash{}, fault.Wrap(fault.Env, fmt.Errorf("imgdiff: input-%d layer %d: diffID: %w", s.n, i, err))
	}
	return id, nil
}

func loadSide(n int, img v1.Image) (*side, error) {
	if img == nil {
		return nil, fault.Errorf(fault.Usage, "imgdiff: input-%d: no image given", n)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fault.Wrap(fault.Env, fmt.Errorf("imgdiff: input-%d: reading manifest: %w", n, err))
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fault.Wrap(fault.Env, fmt.Errorf("imgdiff: input-%d: reading config %s: %w", n, m.Config.Digest, err))
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, fault.Wrap(fault.Env, fmt.Errorf("imgdiff: input-%d: listing layers: %w", n, err))
	}
	s := &side{n: n, img: img, manifest: m, config: cfg, layers: ls}
	if cf, err := img.ConfigFile(); err == nil && len(cf.RootFS.DiffIDs) == len(ls) {
		s.diffIDs = cf.RootFS.DiffIDs
	}
	return s, nil
}

// Compare reports the differences between img0 and img1.
func Compare(ctx context.Context, img0, img1 v1.Image, o Options) (*Result, error) {
	s0, err := loadSide(0, img0)
	if err != nil {
		return nil, err
	}
	s1, err := loadSide(1, img1)
	if err != nil {
		return nil, err
	}

	var changes []Change
	changes = append(changes, compareManifests(s0.manifest, s1.manifest, o.Semantic)...)
	cc, err := compareConfigs(s0.config, s1.config, o.Semantic)
	if err != nil {
		return nil, err
	}
	changes = append(changes, cc...)

	ix := newIndexer()
	if o.Semantic {
		var fs [2]map[string]*entry
		err := both(ctx, s0, s1, func(ctx context.Context, s *side) error {
			var err error
			fs[s.n], err = ix.flatten(ctx, s)
			return err
		})
		if err != nil {
			return nil, err
		}
		changes = append(changes, compareEntries(fs[0], fs[1], NoLayer, true)...)
	} else {
		lc, err := compareLayers(ctx, ix, s0, s1)
		if err != nil {
			return nil, err
		}
		changes = append(changes, lc...)
	}

	sortChanges(changes)
	r := &Result{Semantic: o.Semantic, Changes: changes, Equal: len(changes) == 0, Summary: summarize(changes)}
	if o.ReportDir != "" {
		if err := writeReport(ctx, o.ReportDir, r.Changes, ix, s0, s1); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func summarize(changes []Change) Summary {
	s := Summary{Total: len(changes), ByType: map[string]int{}}
	for _, c := range changes {
		s.ByType[c.Type]++
		switch c.Detail {
		case DetailAdded:
			s.Added++
		case DetailRemoved:
			s.Removed++
		default:
			s.Changed++
		}
	}
	return s
}

// typeRank orders the table: images' envelopes first, then layers, then files.
func typeRank(t string) int {
	switch t {
	case TypeManifest:
		return 0
	case TypeConfig:
		return 1
	case TypeLayer:
		return 2
	}
	return 3
}

// sortChanges makes output deterministic: by rank, layer, name, type, detail.
func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if ra, rb := typeRank(a.Type), typeRank(b.Type); ra != rb {
			return ra < rb
		}
		if a.Layer != b.Layer {
			return a.Layer < b.Layer
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Detail != b.Detail {
			return a.Detail < b.Detail
		}
		if a.Input0 != b.Input0 {
			return a.Input0 < b.Input0
		}
		return a.Input1 < b.Input1
	})
}
