package main

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The bsdiff reference is what a per-file binary differ ships for a layer
// (tar-diff, the engine behind containers/oci-delta, works this way):
// Debian's bsdiff of each changed regular file against its old version —
// same path, or same path once version numbers are ignored, closest size
// winning, as tarpatch pairs files — plus `zstd -19` of each file with no
// old version. Files identical to one in the old layer cost nothing, and
// neither do headers: the reference is a lower bound of such a tool.

var benchVersionRE = regexp.MustCompile(`[0-9]+`)

func benchClean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

func benchNormalize(name string) string {
	return benchVersionRE.ReplaceAllString(benchClean(name), "#")
}

type tarFile struct {
	name string
	off  int64
	size int64
}

type offsetReader struct {
	r io.Reader
	n int64
}

func (c *offsetReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// tarFiles lists the regular files of a tar with their data offsets and
// content hashes.
func tarFiles(p string) ([]tarFile, map[[32]byte]bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	cr := &offsetReader{r: f}
	tr := tar.NewReader(cr)
	var out []tarFile
	hashes := map[[32]byte]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg || h.Size == 0 {
			continue
		}
		tf := tarFile{name: benchClean(h.Name), off: cr.n, size: h.Size}
		hs := sha256.New()
		if _, err := io.Copy(hs, tr); err != nil {
			return nil, nil, err
		}
		var sum [32]byte
		copy(sum[:], hs.Sum(nil))
		hashes[sum] = true
		out = append(out, tf)
	}
	return out, hashes, nil
}

func extract(tarPath string, f tarFile, dst string) error {
	src, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(src, f.off, f.size)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// bsdiffReference measures the bsdiff reference of one layer pair.
func bsdiffReference(oldTar, newTar, work string) (zstdRef, error) {
	start := time.Now()
	oldFiles, oldHashes, err := tarFiles(oldTar)
	if err != nil {
		return zstdRef{}, err
	}
	newFiles, _, err := tarFiles(newTar)
	if err != nil {
		return zstdRef{}, err
	}
	byPath := map[string]tarFile{}
	byNorm := map[string][]tarFile{}
	for _, f := range oldFiles {
		if _, ok := byPath[f.name]; !ok {
			byPath[f.name] = f
		}
		n := benchNormalize(f.name)
		byNorm[n] = append(byNorm[n], f)
	}
	match := func(f tarFile) (tarFile, bool) {
		if o, ok := byPath[f.name]; ok {
			return o, true
		}
		c := byNorm[benchNormalize(f.name)]
		if len(c) == 0 {
			return tarFile{}, false
		}
		best := c[0]
		for _, x := range c[1:] {
			if absDiff(x.size, f.size) < absDiff(best.size, f.size) {
				best = x
			}
		}
		return best, true
	}
	src, err := os.Open(newTar)
	if err != nil {
		return zstdRef{}, err
	}
	defer src.Close()
	type job struct {
		nf, old tarFile
		hasOld  bool
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var total int64
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := range jobs {
				n, err := bsdiffOne(oldTar, newTar, j.nf, j.old, j.hasOld, filepath.Join(work, fmt.Sprintf("bs%d", w)))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", j.nf.name, err)
				}
				total += n
				mu.Unlock()
			}
		}(w)
	}
	for _, nf := range newFiles {
		b := make([]byte, nf.size)
		if _, err := src.ReadAt(b, nf.off); err != nil {
			firstErr = err
			break
		}
		if oldHashes[sha256.Sum256(b)] {
			continue // unchanged (or moved): nothing to ship
		}
		old, ok := match(nf)
		jobs <- job{nf: nf, old: old, hasOld: ok}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return zstdRef{}, firstErr
	}
	return zstdRef{Bytes: total, Seconds: time.Since(start).Seconds()}, nil
}

func bsdiffOne(oldTar, newTar string, nf, old tarFile, hasOld bool, dir string) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	newPath := filepath.Join(dir, "new")
	if err := extract(newTar, nf, newPath); err != nil {
		return 0, err
	}
	if !hasOld {
		return countOutput("zstd", "-q", "-19", "-c", newPath)
	}
	oldPath, patch := filepath.Join(dir, "old"), filepath.Join(dir, "patch")
	if err := extract(oldTar, old, oldPath); err != nil {
		return 0, err
	}
	if out, err := exec.Command("bsdiff", oldPath, newPath, patch).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("bsdiff: %v: %s", err, out)
	}
	return fileSize(patch), nil
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

var bsdiffVer string

// bsdiffVersion names the installed bsdiff (Debian's package version) for
// the reference cache key.
func bsdiffVersion() string {
	if bsdiffVer == "" {
		if _, err := exec.LookPath("bsdiff"); err != nil {
			panic("bsdiff (the reference) is not installed: run scripts/deps.sh")
		}
		out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "bsdiff").Output()
		bsdiffVer = "bsdiff " + strings.TrimSpace(string(out))
		if err != nil {
			bsdiffVer = "bsdiff unknown"
		}
	}
	return bsdiffVer
}
