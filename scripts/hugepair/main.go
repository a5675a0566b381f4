// Command hugepair generates a benchmark image pair with one very large
// layer (10 GiB by default): real files, taken from the corpus's layer
// tars, replicated until the layer reaches its size, each replica made
// unique by a few bytes derived from its index. The new image's layer is
// the old one with scattered edits: about one file in 64 has a few bytes
// changed, one in 512 is gone and one in 512 is new. Layers are Go gzip
// at BestSpeed (what go-containerregistry writes), so diffah can replay
// them. Everything is streamed (nothing holds a layer in memory) and
// deterministic: the same corpus and size give the same images.
//
//	go run ./scripts/hugepair -corpus .cache/corpus -out .cache/huge -size 10GiB
//
// It writes OUT/old and OUT/new (OCI layouts) and OUT/pairs.json (one pair,
// "huge"), which scripts/bench-huge.sh times.
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/diffah/diffah/internal/ctxio"
	"hash/fnv"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	corpus := flag.String("corpus", ".cache/corpus", "corpus directory (scripts/corpus.sh) whose layer tars give the files")
	out := flag.String("out", ".cache/huge", "output directory")
	sizeFlag := flag.String("size", "10GiB", "uncompressed layer size (e.g. 10GiB, 512MiB)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("hugepair: ")
	size, err := parseSize(*sizeFlag)
	if err != nil {
		log.Fatal(err)
	}
	pool, err := loadPool(*corpus)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.close()
	log.Printf("%d files (%d MiB) from %s; layer of %d MiB", len(pool.files), pool.bytes>>20, *corpus, size>>20)
	for _, side := range []string{"old", "new"} {
		start := time.Now()
		if err := writeImage(filepath.Join(*out, side), pool, size, side == "new"); err != nil {
			log.Fatal(err)
		}
		log.Printf("%s written in %s", side, time.Since(start).Round(time.Second))
	}
	pairs := map[string]any{"pairs": []map[string]string{{"name": "huge", "old": "old", "new": "new"}}}
	b, _ := json.MarshalIndent(pairs, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "pairs.json"), append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-size %q: want a positive size such as 10GiB or 512MiB", s)
	}
	return n * mult, nil
}

// file is a regular file in one of the corpus tars.
type file struct {
	src  int
	name string
	off  int64
	size int64
	mode int64
}

type pool struct {
	tars  []*os.File
	files []file
	bytes int64
}

func (p *pool) close() {
	for _, f := range p.tars {
		f.Close()
	}
}

// loadPool indexes the regular files (up to 64 MiB each) of the old layer
// tars the corpus kept (pairs.json's changed[].oldTar), sorted by pair name.
func loadPool(corpus string) (*pool, error) {
	b, err := os.ReadFile(filepath.Join(corpus, "pairs.json"))
	if err != nil {
		return nil, fmt.Errorf("%w (build the corpus first: make corpus)", err)
	}
	var doc struct {
		Pairs []struct {
			Name    string `json:"name"`
			Changed []struct {
				OldTar string `json:"oldTar"`
			} `json:"changed"`
		} `json:"pairs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", corpus, err)
	}
	sort.Slice(doc.Pairs, func(i, j int) bool { return doc.Pairs[i].Name < doc.Pairs[j].Name })
	p := &pool{}
	for _, pr := range doc.Pairs {
		for _, c := range pr.Changed {
			f, err := os.Open(filepath.Join(corpus, c.OldTar))
			if err != nil {
				return nil, err
			}
			p.tars = append(p.tars, f)
			cr := &counter{r: f}
			tr := tar.NewReader(cr)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return nil, fmt.Errorf("%s: %w", c.OldTar, err)
				}
				if h.Typeflag == tar.TypeReg && h.Size > 0 && h.Size <= 64<<20 {
					p.files = append(p.files, file{src: len(p.tars) - 1, name: pr.Name + "/" + strings.TrimPrefix(h.Name, "./"), off: cr.n, size: h.Size, mode: h.Mode})
					p.bytes += h.Size
				}
			}
		}
	}
	if len(p.files) == 0 {
		return nil, fmt.Errorf("%s: no layer tars with files", corpus)
	}
	return p, nil
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(b []byte) (int, error) { n, err := c.r.Read(b); c.n += int64(n); return n, err }

// mix is a deterministic hash of a replica's index and a salt.
func mix(k int, salt string) uint64 {
	h := fnv.New64a()
	binary.Write(h, binary.LittleEndian, int64(k))
	h.Write([]byte(salt))
	return h.Sum64()
}

// writeImage writes an OCI layout at dir with one gzip layer of about
// size uncompressed bytes; edited picks the new side's edits.
func writeImage(dir string, p *pool, size int64, edited bool) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(blobs, ".layer-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	blobHash, diffHash := sha256.New(), sha256.New()
	cw := &ctxio.CountingWriter{W: io.MultiWriter(tmp, blobHash)}
	zw, err := gzip.NewWriterLevel(cw, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash))
	var written int64
	buf := make([]byte, 0, 1<<20)
	for k := 0; written < size; k++ {
		f := p.files[k%len(p.files)]
		rep := k / len(p.files)
		h := mix(k, "file")
		if edited && h%512 == 1 {
			continue // gone in the new image
		}
		name := fmt.Sprintf("r%03d/%s", rep, f.name)
		if err := addFile(tw, p, f, name, rep, k, edited && h%64 == 0, &buf); err != nil {
			return err
		}
		written += 512 + (f.size+511)/512*512
		if edited && h%512 == 2 {
			// New in the new image: the same file as another replica.
			if err := addFile(tw, p, f, fmt.Sprintf("new%03d/%s", rep, f.name), rep+1000, k, false, &buf); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	layerDigest := "sha256:" + hex.EncodeToString(blobHash.Sum(nil))
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, strings.TrimPrefix(layerDigest, "sha256:"))); err != nil {
		return err
	}
	diffID := "sha256:" + hex.EncodeToString(diffHash.Sum(nil))
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	cfgDesc, err := writeBlob(blobs, "application/vnd.oci.image.config.v1+json", config)
	if err != nil {
		return err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfgDesc,
		"layers":        []desc{{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: layerDigest, Size: cw.N}},
	})
	mDesc, err := writeBlob(blobs, "application/vnd.oci.image.manifest.v1+json", manifest)
	if err != nil {
		return err
	}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []desc{mDesc}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// addFile writes one replica of f. Each replica differs from the others by
// 8 bytes every 256 KiB (derived from rep); an edited one also has 16
// bytes changed at three places.
func addFile(tw *tar.Writer, p *pool, f file, name string, rep, k int, edit bool, buf *[]byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: f.size, Mode: f.mode, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	sr := io.NewSectionReader(p.tars[f.src], f.off, f.size)
	for off := int64(0); off < f.size; off += 1 << 20 {
		n := min(1<<20, f.size-off)
		b := (*buf)[:n]
		if _, err := io.ReadFull(sr, b); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		for at := int64(0); at < n; at += 256 << 10 {
			if rep > 0 {
				v := mix(rep, f.name) ^ uint64(off+at)
				for i := int64(0); i < 8 && at+i < n; i++ {
					b[at+i] ^= byte(v >> (8 * i))
				}
			}
		}
		if edit {
			for e := range 3 {
				pos := int64(mix(k, fmt.Sprintf("edit%d", e)) % uint64(f.size))
				for i := pos; i < pos+16 && i < f.size; i++ {
					if i >= off && i < off+n {
						b[i-off] ^= 0x5a
					}
				}
			}
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return nil
}

type desc struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

func writeBlob(dir, mediaType string, b []byte) (desc, error) {
	s := sha256.Sum256(b)
	d := hex.EncodeToString(s[:])
	return desc{MediaType: mediaType, Digest: "sha256:" + d, Size: int64(len(b))}, os.WriteFile(filepath.Join(dir, d), b, 0o644)
}
