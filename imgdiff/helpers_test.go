package imgdiff

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// ent is one tar entry of a test layer.
type ent struct {
	h    tar.Header
	body string
}

func file(name, body string) ent {
	return ent{h: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch, Uname: "root", Gname: "root"}, body: body}
}

func dir(name string) ent {
	return ent{h: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Uname: "root", Gname: "root"}}
}

func symlink(name, target string) ent {
	return ent{h: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hardlink(name, target string) ent {
	return ent{h: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: epoch}}
}

func whiteout(name string) ent { return file(name, "") }

func (e ent) mode(m int64) ent       { e.h.Mode = m; return e }
func (e ent) owner(uid, gid int) ent { e.h.Uid, e.h.Gid = uid, gid; return e }
func (e ent) user(u, g string) ent   { e.h.Uname, e.h.Gname = u, g; return e }
func (e ent) mtime(t time.Time) ent  { e.h.ModTime = t; return e }
func (e ent) pax(k, v string) ent {
	if e.h.PAXRecords == nil {
		e.h.PAXRecords = map[string]string{}
	}
	e.h.PAXRecords[k] = v
	e.h.Format = tar.FormatPAX
	return e
}

func tarBytes(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layer builds a gzip layer from entries; level picks the compression level
// so tests can make layers that differ only in compression.
func layerAt(t testing.TB, level int, ents ...ent) v1.Layer {
	t.Helper()
	b := tarBytes(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithCompressionLevel(level))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func layer(t testing.TB, ents ...ent) v1.Layer { return layerAt(t, gzip.BestSpeed, ents...) }

// image stacks layers on an empty image and then edits its config.
func image(t testing.TB, edit func(*v1.ConfigFile), layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	cf.Config.Cmd = []string{"/bin/sh"}
	if edit != nil {
		edit(cf)
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// only keeps the changes of the given types.
func only(cs []Change, types ...string) []Change {
	var out []Change
	for _, c := range cs {
		for _, t := range types {
			if c.Type == t {
				out = append(out, c)
			}
		}
	}
	return out
}

// entryChanges keeps file-level changes (everything but manifest, config, layer).
func entryChanges(cs []Change) []Change {
	var out []Change
	for _, c := range cs {
		if typeRank(c.Type) == 3 {
			out = append(out, c)
		}
	}
	return out
}

// sum is the digest Compare shows for a file with content s.
func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}
