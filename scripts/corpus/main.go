// Command corpus is the Go half of scripts/corpus.sh. It owns the two steps
// that must be byte-exact: packing directories into an OCI image layout
// whose layers are deterministic tars (sorted names, fixed mtime, uid/gid
// 0) compressed by Go's compress/gzip at level 6 — the way docker and
// BuildKit compress layers, so diffah can reproduce them — and writing
// pairs.json, with the uncompressed tars of every changed layer that the
// benchmark's `zstd --patch-from` reference needs.
//
//	go run ./scripts/corpus -o OUT DIR [DIR...]      one image, a layer per DIR
//	go run ./scripts/corpus -pairs CORPUS NAME...    CORPUS/pairs.json for CORPUS/NAME/{old,new}
//	go run ./scripts/corpus -o OUT -tag T DIR...     add image T to the layout OUT (fleets: blobs shared)
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// mtime replaces every file's time, so a rebuild of the same software
// gives the same layer.
var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fl := flag.NewFlagSet("corpus", flag.ContinueOnError)
	fl.SetOutput(stderr)
	out := fl.String("o", "", "OCI layout to create from the directories given (one layer each)")
	pairs := fl.String("pairs", "", "corpus directory: write its pairs.json for the pair names given")
	tag := fl.String("tag", "", "with -o: add the image under this tag to the layout OUT, created when missing (a fleet's images share their blobs)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch {
	case *out != "" && *tag != "" && *pairs == "" && fl.NArg() > 0:
		return addTagged(*out, *tag, fl.Args())
	case *out != "" && *pairs == "" && fl.NArg() > 0:
		return build(*out, fl.Args())
	case *pairs != "" && *out == "" && fl.NArg() > 0:
		return writePairs(*pairs, fl.Args(), stderr)
	}
	return errors.New("usage: corpus -o OUT [-tag T] DIR [DIR...] | corpus -pairs CORPUS_DIR NAME [NAME...]")
}

// build writes an image whose layers are dirs, in order, to the OCI layout
// out. It assembles everything beside out and renames it into place, so an
// interrupted run leaves no half layout that the next run would keep.
func build(out string, dirs []string) error {
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists; delete it to rebuild", out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".corpus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img, err := image(tmp, dirs)
	if err != nil {
		return err
	}
	dst := filepath.Join(tmp, "layout")
	p, err := layout.Write(dst, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return os.Rename(dst, out)
}

// addTagged adds the image made of dirs to the layout out under tag,
// creating the layout when missing; blobs already there are kept, so a
// fleet's shared base is stored once. A tag already present is an error.
func addTagged(out, tag string, dirs []string) error {
	p, err := layout.FromPath(out)
	if err != nil {
		if p, err = layout.Write(out, empty.Index); err != nil {
			return err
		}
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == tag {
			return fmt.Errorf("%s already holds %s; delete the layout to rebuild", out, tag)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(out)), ".corpus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img, err := image(tmp, dirs)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
}

// image packs dirs, a layer each, under tmp into an image with a fixed
// config.
func image(tmp string, dirs []string) (v1.Image, error) {
	var layers []v1.Layer
	for i, dir := range dirs {
		blob := filepath.Join(tmp, fmt.Sprintf("layer%d.tar.gz", i))
		if err := pack(dir, blob); err != nil {
			return nil, fmt.Errorf("packing %s: %w", dir, err)
		}
		l, err := tarball.LayerFromFile(blob, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("layer of %s: %w", dir, err)
		}
		layers = append(layers, l)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: mtime}
	for i := range cf.History {
		cf.History[i].Created = v1.Time{Time: mtime}
	}
	return mutate.ConfigFile(img, cf)
}

// pack writes dir as a gzip'd tar at blob, streaming file contents.
func pack(dir, blob string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, 6)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, p := range paths {
		if err := addEntry(tw, dir, p); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func addEntry(tw *tar.Writer, dir, p string) error {
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() && !st.IsDir() && st.Mode()&fs.ModeSymlink == 0 {
		return nil // sockets, fifos and devices do not occur in packages' payloads
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	link := ""
	if st.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(st, link)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	h.Name = filepath.ToSlash(rel)
	if st.IsDir() {
		h.Name += "/"
	}
	h.ModTime, h.AccessTime, h.ChangeTime = mtime, time.Time{}, time.Time{}
	h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
	h.Format = tar.FormatPAX
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	src, err := os.Open(p)
	if err != nil {
		return err
	}
	defer src.Close()
	if _, err := io.Copy(tw, src); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// Pair is an entry of pairs.json. Paths are relative to the corpus
// directory.
type Pair struct {
	Name    string   `json:"name"`
	Old     string   `json:"old"`
	New     string   `json:"new"`
	Changed []Change `json:"changed"`
}

// Change is a layer of the new image whose blob the old image lacks, and
// the old layer at the same position (the last one if the old image has
// fewer) that a patch would start from.
type Change struct {
	Index     int    `json:"index"`
	OldDigest string `json:"oldDigest"`
	NewDigest string `json:"newDigest"`
	OldTar    string `json:"oldTar"`
	NewTar    string `json:"newTar"`
	OldSize   int64  `json:"oldTarBytes"`
	NewSize   int64  `json:"newTarBytes"`
}

// writePairs lists the pairs under corpus in corpus/pairs.json and keeps
// the uncompressed tar of every changed layer, old and new, in
// NAME/tars/DIFFID.tar. Tars that exist are kept; tars no longer needed
// are removed. Pairs without both layouts are skipped (the large one is
// optional).
func writePairs(corpus string, names []string, stderr io.Writer) error {
	var pairs []Pair
	for _, n := range names {
		oldDir, newDir := filepath.Join(corpus, n, "old"), filepath.Join(corpus, n, "new")
		if !exists(filepath.Join(oldDir, "index.json")) || !exists(filepath.Join(newDir, "index.json")) {
			continue
		}
		p, err := pairOf(corpus, n)
		if err != nil {
			return fmt.Errorf("pair %s: %w", n, err)
		}
		fmt.Fprintf(stderr, "corpus: %s: %d changed layers\n", n, len(p.Changed))
		pairs = append(pairs, p)
	}
	if len(pairs) == 0 {
		return fmt.Errorf("no pair of %s is built under %s (run scripts/corpus.sh)", strings.Join(names, ", "), corpus)
	}
	b, err := json.MarshalIndent(struct {
		Pairs []Pair `json:"pairs"`
	}{pairs}, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(corpus, "pairs.json"), func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func pairOf(corpus, name string) (Pair, error) {
	p := Pair{Name: name, Old: filepath.Join(name, "old"), New: filepath.Join(name, "new"), Changed: []Change{}}
	oldImg, err := single(filepath.Join(corpus, p.Old))
	if err != nil {
		return p, err
	}
	newImg, err := single(filepath.Join(corpus, p.New))
	if err != nil {
		return p, err
	}
	oldLayers, oldIDs, err := layersAndDiffIDs(oldImg)
	if err != nil {
		return p, fmt.Errorf("%s: %w", p.Old, err)
	}
	newLayers, newIDs, err := layersAndDiffIDs(newImg)
	if err != nil {
		return p, fmt.Errorf("%s: %w", p.New, err)
	}
	if len(oldLayers) == 0 {
		return p, fmt.Errorf("%s has no layers", p.Old)
	}
	have := map[v1.Hash]bool{}
	for _, l := range oldLayers {
		d, err := l.Digest()
		if err != nil {
			return p, err
		}
		have[d] = true
	}
	tars := filepath.Join(corpus, name, "tars")
	if err := os.MkdirAll(tars, 0o755); err != nil {
		return p, err
	}
	keep := map[string]bool{}
	for i, nl := range newLayers {
		nd, err := nl.Digest()
		if err != nil {
			return p, err
		}
		if have[nd] {
			continue
		}
		oi := min(i, len(oldLayers)-1)
		ol := oldLayers[oi]
		od, err := ol.Digest()
		if err != nil {
			return p, err
		}
		c := Change{Index: i, OldDigest: od.String(), NewDigest: nd.String()}
		for _, s := range []struct {
			l      v1.Layer
			diffID v1.Hash
			path   *string
			size   *int64
		}{{ol, oldIDs[oi], &c.OldTar, &c.OldSize}, {nl, newIDs[i], &c.NewTar, &c.NewSize}} {
			file, n, err := keepTar(tars, s.l, s.diffID)
			if err != nil {
				return p, err
			}
			keep[file] = true
			*s.path, *s.size = filepath.Join(name, "tars", file), n
		}
		p.Changed = append(p.Changed, c)
	}
	ents, err := os.ReadDir(tars)
	if err != nil {
		return p, err
	}
	for _, e := range ents {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(tars, e.Name())); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

func layersAndDiffIDs(img v1.Image) ([]v1.Layer, []v1.Hash, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	if len(cf.RootFS.DiffIDs) != len(ls) {
		return nil, nil, fmt.Errorf("%d layers but %d diffIDs in the config", len(ls), len(cf.RootFS.DiffIDs))
	}
	return ls, cf.RootFS.DiffIDs, nil
}

// single opens the one image of the OCI layout dir.
func single(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s: %d entries in index.json, want 1", dir, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

// keepTar makes sure dir/DIFFID.tar holds the layer uncompressed, checking
// the diffID the image's config lists while it streams (ggcr's own DiffID
// of a layout layer may be computed from the very bytes in question), and
// returns its name and size.
func keepTar(dir string, l v1.Layer, diffID v1.Hash) (string, int64, error) {
	file := diffID.Hex + ".tar"
	path := filepath.Join(dir, file)
	if st, err := os.Stat(path); err == nil {
		return file, st.Size(), nil
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	var n int64
	err = writeAtomic(path, func(w io.Writer) error {
		h := sha256.New()
		var err error
		if n, err = io.Copy(io.MultiWriter(w, h), rc); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
			return fmt.Errorf("layer uncompresses to sha256:%s, its diffID is %s: the layout is corrupt, delete the pair and rebuild", got, diffID)
		}
		return nil
	})
	if err != nil {
		return "", 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return file, n, nil
}

// writeAtomic writes path through a temporary file in the same directory,
// so that a reader (or the next idempotent run) never sees half a file.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
