// Command corpus writes an OCI image layout whose layers are the given
// directories, each packed as a deterministic tar (sorted names, fixed
// mtime, uid/gid 0) and compressed by Go's compress/gzip at level 6, the
// way docker and BuildKit compress layers, so diffah can reproduce them.
//
//	go run ./scripts/corpus -o OUT DIR [DIR...]
package main

import (
	"archive/tar"
	"compress/gzip"
	"flag"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var mtime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("o", "", "OCI layout to create")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("corpus: ")
	if *out == "" || flag.NArg() == 0 {
		log.Fatal("usage: corpus -o OUT DIR [DIR...]")
	}
	tmp, err := os.MkdirTemp(filepath.Dir(*out), ".corpus-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	var layers []v1.Layer
	for i, dir := range flag.Args() {
		blob := filepath.Join(tmp, "layer"+string(rune('0'+i))+".tar.gz")
		if err := pack(dir, blob); err != nil {
			log.Fatalf("%s: %v", dir, err)
		}
		l, err := tarball.LayerFromFile(blob, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			log.Fatal(err)
		}
		layers = append(layers, l)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layers...)
	if err != nil {
		log.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: mtime}
	for i := range cf.History {
		cf.History[i].Created = v1.Time{Time: mtime}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		log.Fatal(err)
	}
	dst := filepath.Join(tmp, "layout")
	p, err := layout.Write(dst, empty.Index)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(dst, *out); err != nil {
		log.Fatal(err)
	}
}

// pack writes dir as a gzip'd tar.
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
	zw, _ := gzip.NewWriterLevel(f, 6)
	tw := tar.NewWriter(zw)
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		link := ""
		if st.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(st, link)
		if err != nil {
			continue // sockets and the like
		}
		h.Name = filepath.ToSlash(rel)
		if st.IsDir() {
			h.Name += "/"
		}
		h.ModTime, h.AccessTime, h.ChangeTime = mtime, time.Time{}, time.Time{}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if st.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
