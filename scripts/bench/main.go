// Command bench measures diffah on the benchmark corpus: for every image
// pair it reports the full target size, a layer-level delta, diffah's
// delta, and the reference `zstd -19 --long=31 --patch-from=OLD.tar
// NEW.tar` summed over the changed layers, with ratios, pack and resolve
// throughput (MB/s of uncompressed layer content, against `gzip -6` of the
// same tars) and peak RSS from /usr/bin/time -v. Every rebuilt image is
// checked byte for byte (manifest digest). Output: a table on stdout and
// JSON in -json.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Result is one pair's measurements; the JSON field names are stable.
type Result struct {
	Pair string `json:"pair"`
	// Sizes in bytes.
	FullTarget    int64 `json:"fullTargetBytes"`
	LayerDelta    int64 `json:"layerLevelDeltaBytes"`
	DiffahDelta   int64 `json:"diffahDeltaBytes"`
	ChangedLayers int   `json:"changedLayers"`
	// ChangedUncompressed is the uncompressed size of the changed layers.
	ChangedUncompressed int64 `json:"changedUncompressedBytes"`
	// MaxLayerUncompressed is the largest changed layer, uncompressed.
	MaxLayerUncompressed int64 `json:"maxLayerUncompressedBytes"`
	// DiffahChanged is what diffah ships for the changed layers (patches
	// and whole blobs); ZstdRef is the reference for the same layers.
	DiffahChanged int64   `json:"diffahChangedBytes"`
	ZstdRef       int64   `json:"zstdPatchFromBytes"`
	RatioVsZstd   float64 `json:"ratioVsZstd"`
	// BsdiffRef is the bsdiff-per-file reference (see bsdiffref.go);
	// RatioVsBest compares with the smaller of the two references.
	BsdiffRef     int64   `json:"bsdiffPerFileBytes"`
	RatioVsBsdiff float64 `json:"ratioVsBsdiff"`
	RatioVsBest   float64 `json:"ratioVsBestReference"`
	RatioVsLayer  float64 `json:"ratioVsLayerLevel"`
	RatioVsFull   float64 `json:"ratioVsFull"`
	PackMBps      float64 `json:"packMBps"`
	ResolveMBps   float64 `json:"resolveMBps"`
	Gzip6MBps     float64 `json:"gzip6MBps"`
	ZstdRefSecs   float64 `json:"zstdRefSeconds"`
	ZstdRefMBps   float64 `json:"zstdRefMBps"`
	PackRSSMiB    float64 `json:"packPeakRSSMiB"`
	ResolveRSSMiB float64 `json:"resolvePeakRSSMiB"`
	ByteIdentical bool    `json:"byteIdentical"`
	// Runs are export and import timed with each -jobs value, in the same
	// run (so ratios between them hold on a loaded machine too).
	Runs []JobsRun `json:"jobsRuns"`
	// ExportRatio and ImportRatio are the wall time with the second -jobs
	// value over the first (jobs 2 / jobs 1 by default).
	ExportRatio float64 `json:"exportJobsRatio"`
	ImportRatio float64 `json:"importJobsRatio"`
	// SameAcrossJobs: every -jobs value wrote the same archive bytes.
	SameAcrossJobs bool `json:"sameArchiveAcrossJobs"`
}

// JobsRun is one export and one import with --jobs Jobs: wall seconds,
// CPU seconds (user+sys) and peak RSS.
type JobsRun struct {
	Jobs          int     `json:"jobs"`
	ExportSecs    float64 `json:"exportSeconds"`
	ExportCPUSecs float64 `json:"exportCPUSeconds"`
	ExportRSSMiB  float64 `json:"exportPeakRSSMiB"`
	ImportSecs    float64 `json:"importSeconds"`
	ImportCPUSecs float64 `json:"importCPUSeconds"`
	ImportRSSMiB  float64 `json:"importPeakRSSMiB"`
}

func main() {
	corpus := flag.String("corpus", ".cache/corpus", "corpus directory holding pairs.json")
	bin := flag.String("bin", "bin/diffah", "diffah binary")
	out := flag.String("json", "bench-out/results.json", "where to write JSON results")
	only := flag.String("only", "", "comma-separated pair names to run (default all)")
	jobsFlag := flag.String("jobs", "", "comma-separated --jobs values export and import are timed with, side by side (default 1,2, and 4 on a machine with 4 or more CPUs); the last one's figures fill the main table")
	maxRatio := flag.Float64("max-ratio", 0.90, "target: diffah's changed-layer bytes at most this times the smaller of the zstd and bsdiff references, on every pair")
	maxRatioBin := flag.Float64("max-ratio-binary", 0.80, "target: the same ratio on the binary-heavy pairs (-binary-pairs)")
	binPairs := flag.String("binary-pairs", "app-rebuild,large", "comma-separated names of the binary-heavy pairs")
	maxRSS := flag.Float64("max-rss-mib", 512, "target: peak RSS of pack and resolve below this on pairs with a layer of at least 1 GiB")
	refFile := flag.String("zstd-cache", filepath.Join(".cache", "zstd-ref.json"), "file keeping zstd reference results between runs (\"\" to measure every time)")
	bsFile := flag.String("bsdiff-cache", filepath.Join(".cache", "bsdiff-ref.json"), "file keeping bsdiff reference results between runs (\"\" to measure every time)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench: ")

	if *refFile != "" {
		refs.load(*refFile)
	}
	if *bsFile != "" {
		bsRefs.load(*bsFile)
	}
	jobsList, err := parseJobs(*jobsFlag)
	if err != nil {
		log.Fatal(err)
	}
	pairs, err := loadPairs(filepath.Join(*corpus, "pairs.json"))
	if err != nil {
		log.Fatal(err)
	}
	var results []Result
	for _, p := range pairs {
		if *only != "" && !contains(strings.Split(*only, ","), p.Name) {
			continue
		}
		log.Printf("pair %s", p.Name)
		r, err := measure(*bin, p, jobsList)
		if err != nil {
			log.Fatalf("pair %s: %v", p.Name, err)
		}
		results = append(results, r)
	}
	printTable(os.Stdout, results)
	printJobs(os.Stdout, results)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		log.Fatal(err)
	}
	b, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", *out)
	misses := checkTargets(os.Stdout, results, *maxRatio, *maxRatioBin, strings.Split(*binPairs, ","), *maxRSS)
	if misses > 0 {
		log.Fatalf("%d target(s) missed", misses)
	}
}

// checkTargets prints one verdict per pair and target and returns how many
// were missed: byte-identical rebuild, size against the smaller of the
// zstd and bsdiff references (a tighter ratio on the binary-heavy pairs),
// and peak memory on the pairs with a layer of at least 1 GiB.
func checkTargets(w io.Writer, rs []Result, maxRatio, maxRatioBin float64, binPairs []string, maxRSS float64) int {
	misses := 0
	verdict := func(pair, what string, ok bool, detail string) {
		v := "ok"
		if !ok {
			v = "MISSED"
			misses++
		}
		fmt.Fprintf(w, "target %-14s %-34s %-6s %s\n", pair, what, v, detail)
	}
	for _, r := range rs {
		verdict(r.Pair, "byte-identical rebuild", r.ByteIdentical, "manifest digest of the rebuilt image")
		verdict(r.Pair, "same archive for every --jobs", r.SameAcrossJobs, "sha256 of the archive")
		if r.RatioVsBest > 0 {
			lim := maxRatio
			if contains(binPairs, r.Pair) {
				lim = maxRatioBin
			}
			verdict(r.Pair, fmt.Sprintf("diffah/min(zstd,bsdiff) <= %.2f", lim), r.RatioVsBest <= lim,
				fmt.Sprintf("%.3f (zstd %.3f, bsdiff %.3f)", r.RatioVsBest, r.RatioVsZstd, r.RatioVsBsdiff))
		}
		if r.MaxLayerUncompressed >= 1<<30 {
			verdict(r.Pair, fmt.Sprintf("peak RSS < %.0f MiB", maxRSS), r.PackRSSMiB < maxRSS && r.ResolveRSSMiB < maxRSS,
				fmt.Sprintf("pack %.0f MiB, resolve %.0f MiB", r.PackRSSMiB, r.ResolveRSSMiB))
		}
	}
	return misses
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Pair is an entry of pairs.json.
type Pair struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

func loadPairs(path string) ([]Pair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (run `make corpus` first)", err)
	}
	var doc struct {
		Pairs []Pair `json:"pairs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Pairs) == 0 {
		var list []Pair
		if err2 := json.Unmarshal(b, &list); err2 != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		doc.Pairs = list
	}
	base := filepath.Dir(path)
	for i := range doc.Pairs {
		for _, p := range []*string{&doc.Pairs[i].Old, &doc.Pairs[i].New} {
			if !filepath.IsAbs(*p) {
				*p = filepath.Join(base, *p)
			}
		}
	}
	return doc.Pairs, nil
}

type layer struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

type manifest struct {
	Config layer   `json:"config"`
	Layers []layer `json:"layers"`
}

// readManifest reads the single image of an OCI layout (first entry).
func readManifest(dir string) (manifest, []byte, error) {
	var idx struct {
		Manifests []layer `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return manifest{}, nil, err
	}
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) == 0 {
		return manifest{}, nil, fmt.Errorf("%s: no manifest", dir)
	}
	raw, err := os.ReadFile(blob(dir, idx.Manifests[0].Digest))
	if err != nil {
		return manifest{}, nil, err
	}
	var m manifest
	return m, raw, json.Unmarshal(raw, &m)
}

func blob(dir, d string) string {
	return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
}

func measure(bin string, p Pair, jobsList []int) (Result, error) {
	r := Result{Pair: p.Name}
	work, err := os.MkdirTemp("", "diffah-bench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(work)
	newM, newRaw, err := readManifest(p.New)
	if err != nil {
		return r, err
	}
	oldM, _, err := readManifest(p.Old)
	if err != nil {
		return r, err
	}
	r.FullTarget = int64(len(newRaw)) + newM.Config.Size
	have := map[string]bool{}
	for _, l := range oldM.Layers {
		have[l.Digest] = true
	}
	var changed []int
	for i, l := range newM.Layers {
		r.FullTarget += l.Size
		if !have[l.Digest] {
			changed = append(changed, i)
		}
	}
	r.ChangedLayers = len(changed)

	// The reference: zstd --patch-from on the uncompressed tars, old layer
	// at the same position (or the last one) as the dictionary.
	var gzipSecs float64
	for _, i := range changed {
		oldIdx := i
		if oldIdx >= len(oldM.Layers) {
			oldIdx = len(oldM.Layers) - 1
		}
		oldTar := filepath.Join(work, "old.tar")
		newTar := filepath.Join(work, "new.tar")
		if err := decompress(blob(p.Old, oldM.Layers[oldIdx].Digest), oldM.Layers[oldIdx].MediaType, oldTar); err != nil {
			return r, err
		}
		if err := decompress(blob(p.New, newM.Layers[i].Digest), newM.Layers[i].MediaType, newTar); err != nil {
			return r, err
		}
		st, _ := os.Stat(newTar)
		r.ChangedUncompressed += st.Size()
		r.MaxLayerUncompressed = max(r.MaxLayerUncompressed, st.Size())
		// The reference is slow (zstd -19 on a 1 GiB layer takes most of
		// an hour here) and depends only on the two layers, so it is kept
		// in refCache, keyed by their digests and zstd's version.
		key := oldM.Layers[oldIdx].Digest + " " + newM.Layers[i].Digest + " " + zstdVersion()
		ref, ok := refs.get(key)
		if !ok {
			start := time.Now()
			n, err := countOutput("zstd", "-q", "-19", "--long=31", "--patch-from="+oldTar, newTar, "-c")
			if err != nil {
				return r, fmt.Errorf("zstd reference: %w", err)
			}
			ref = zstdRef{Bytes: n, Seconds: time.Since(start).Seconds()}
			refs.put(key, ref)
		}
		r.ZstdRefSecs += ref.Seconds
		r.ZstdRef += ref.Bytes
		bkey := oldM.Layers[oldIdx].Digest + " " + newM.Layers[i].Digest + " " + bsdiffVersion() + " " + zstdVersion()
		bref, ok := bsRefs.get(bkey)
		if !ok {
			if bref, err = bsdiffReference(oldTar, newTar, work); err != nil {
				return r, fmt.Errorf("bsdiff reference: %w", err)
			}
			bsRefs.put(bkey, bref)
		}
		r.BsdiffRef += bref.Bytes
		start := time.Now()
		if _, err := countOutput("gzip", "-6", "-c", newTar); err != nil {
			return r, err
		}
		gzipSecs += time.Since(start).Seconds()
		os.Remove(oldTar)
		os.Remove(newTar)
	}

	layerDelta := filepath.Join(work, "layer.dlt")
	if _, err := timed(bin, "export", "--intra-layer", "off", "--target", "oci:"+p.New, "--baseline", "oci:"+p.Old, "-o", layerDelta); err != nil {
		return r, err
	}
	r.LayerDelta = fileSize(layerDelta)

	// Export and import with each --jobs value; the last run's archive
	// and image are the ones checked and reported in the main table.
	delta := filepath.Join(work, "diffah.dlt")
	out := filepath.Join(work, "out")
	var packStat, resStat runStat
	var firstSum string
	r.SameAcrossJobs = true
	for _, jobs := range jobsList {
		os.Remove(delta)
		os.RemoveAll(out)
		j := strconv.Itoa(jobs)
		if packStat, err = timed(bin, "export", "--jobs", j, "--target", "oci:"+p.New, "--baseline", "oci:"+p.Old, "--name", "img", "-o", delta); err != nil {
			return r, err
		}
		sum, err := fileSHA(delta)
		if err != nil {
			return r, err
		}
		if firstSum == "" {
			firstSum = sum
		} else if sum != firstSum {
			r.SameAcrossJobs = false
		}
		if resStat, err = timed(bin, "import", "--jobs", j, "--baseline", "oci:"+p.Old, "-o", "oci:"+out+":img", delta); err != nil {
			return r, err
		}
		r.Runs = append(r.Runs, JobsRun{Jobs: jobs, ExportSecs: packStat.secs, ExportCPUSecs: packStat.cpuSecs, ExportRSSMiB: packStat.rssMiB,
			ImportSecs: resStat.secs, ImportCPUSecs: resStat.cpuSecs, ImportRSSMiB: resStat.rssMiB})
	}
	if len(r.Runs) >= 2 && r.Runs[0].ExportSecs > 0 && r.Runs[0].ImportSecs > 0 {
		r.ExportRatio = r.Runs[1].ExportSecs / r.Runs[0].ExportSecs
		r.ImportRatio = r.Runs[1].ImportSecs / r.Runs[0].ImportSecs
	}
	r.DiffahDelta = fileSize(delta)
	r.PackRSSMiB = packStat.rssMiB
	if packStat.secs > 0 {
		r.PackMBps = float64(r.ChangedUncompressed) / 1e6 / packStat.secs
	}
	var insp struct {
		Images []struct {
			Blobs []struct {
				Role        string `json:"role"`
				Kind        string `json:"kind"`
				ShippedSize int64  `json:"shippedSize"`
			} `json:"blobs"`
		} `json:"images"`
	}
	js, err := exec.Command(bin, "inspect", "--json", delta).Output()
	if err != nil {
		return r, fmt.Errorf("inspect: %w", err)
	}
	if err := json.Unmarshal(js, &insp); err != nil {
		return r, err
	}
	for _, b := range insp.Images[0].Blobs {
		if b.Role == "layer" {
			r.DiffahChanged += b.ShippedSize
		}
	}

	r.ResolveRSSMiB = resStat.rssMiB
	if resStat.secs > 0 {
		r.ResolveMBps = float64(r.ChangedUncompressed) / 1e6 / resStat.secs
	}
	if r.ZstdRefSecs > 0 {
		r.ZstdRefMBps = float64(r.ChangedUncompressed) / 1e6 / r.ZstdRefSecs
	}
	if gzipSecs > 0 {
		r.Gzip6MBps = float64(r.ChangedUncompressed) / 1e6 / gzipSecs
	}
	_, gotRaw, err := readManifest(out)
	if err != nil {
		return r, err
	}
	r.ByteIdentical = sha(gotRaw) == sha(newRaw)
	if r.ZstdRef > 0 {
		r.RatioVsZstd = float64(r.DiffahChanged) / float64(r.ZstdRef)
	}
	if r.BsdiffRef > 0 {
		r.RatioVsBsdiff = float64(r.DiffahChanged) / float64(r.BsdiffRef)
	}
	if best := min(r.ZstdRef, r.BsdiffRef); best > 0 {
		r.RatioVsBest = float64(r.DiffahChanged) / float64(best)
	}
	if r.LayerDelta > 0 {
		r.RatioVsLayer = float64(r.DiffahDelta) / float64(r.LayerDelta)
	}
	if r.FullTarget > 0 {
		r.RatioVsFull = float64(r.DiffahDelta) / float64(r.FullTarget)
	}
	return r, nil
}

// zstdRef is one measured reference.
type zstdRef struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// refCache keeps zstd reference results in a JSON file between runs.
type refCache struct {
	path string
	m    map[string]zstdRef
}

var (
	refs   = &refCache{m: map[string]zstdRef{}}
	bsRefs = &refCache{m: map[string]zstdRef{}}
)

func (c *refCache) load(path string) {
	c.path = path
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &c.m); err != nil {
			log.Printf("%s: %v (ignored; the references are measured again)", path, err)
			c.m = map[string]zstdRef{}
		}
	}
}

func (c *refCache) get(k string) (zstdRef, bool) { r, ok := c.m[k]; return r, ok }

func (c *refCache) put(k string, r zstdRef) {
	c.m[k] = r
	if c.path == "" {
		return
	}
	b, _ := json.MarshalIndent(c.m, "", "  ")
	if err := os.WriteFile(c.path, append(b, '\n'), 0o644); err != nil {
		log.Printf("saving the references to %s: %v", c.path, err)
	}
}

var zstdVer string

func zstdVersion() string {
	if zstdVer == "" {
		out, err := exec.Command("zstd", "--version").Output()
		if err != nil {
			log.Fatalf("zstd (the reference) is not installed: %v", err)
		}
		zstdVer = strings.TrimSpace(string(out))
	}
	return zstdVer
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return st.Size()
}

func decompress(src, mediaType, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	var r io.Reader = f
	switch {
	case strings.Contains(mediaType, "gzip"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		r = zr
	case strings.Contains(mediaType, "zstd"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	_, err = io.Copy(out, r)
	return err
}

func countOutput(name string, args ...string) (int64, error) {
	cmd := exec.Command(name, args...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	n, _ := io.Copy(io.Discard, pipe)
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%s: %v: %s", name, err, errb.String())
	}
	return n, nil
}

type runStat struct {
	secs    float64
	cpuSecs float64 // user + system
	rssMiB  float64
}

var (
	rssRE = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)
	cpuRE = regexp.MustCompile(`(?:User|System) time \(seconds\): ([0-9.]+)`)
)

// timed runs diffah under /usr/bin/time -v for wall time and peak RSS.
func timed(bin string, args ...string) (runStat, error) {
	cmd := exec.Command("/usr/bin/time", append([]string{"-v", bin}, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	st := runStat{secs: time.Since(start).Seconds()}
	if err != nil {
		return st, fmt.Errorf("diffah %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	if m := rssRE.FindStringSubmatch(errb.String()); m != nil {
		kb, _ := strconv.ParseFloat(m[1], 64)
		st.rssMiB = kb / 1024
	}
	for _, m := range cpuRE.FindAllStringSubmatch(errb.String(), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		st.cpuSecs += v
	}
	return st, nil
}

// parseJobs reads -jobs: "" is 1,2 (and 4 where the machine has 4 CPUs
// or more).
func parseJobs(s string) ([]int, error) {
	if s == "" {
		if runtime.NumCPU() >= 4 {
			return []int{1, 2, 4}, nil
		}
		return []int{1, 2}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-jobs %q: want positive integers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func fileSHA(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// printJobs prints, per pair, export and import at each --jobs side by
// side: wall seconds, CPU seconds (user+sys; CPU/wall is how many cores
// were busy), and the wall-time ratio of the second value over the first.
func printJobs(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "pair\tjobs\texport s\texport cpu s\texport RSS MiB\timport s\timport cpu s\timport RSS MiB\t\n")
	for _, r := range rs {
		for _, j := range r.Runs {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%.0f\t\n", r.Pair, j.Jobs, j.ExportSecs, j.ExportCPUSecs, j.ExportRSSMiB, j.ImportSecs, j.ImportCPUSecs, j.ImportRSSMiB)
		}
		if len(r.Runs) >= 2 {
			fmt.Fprintf(tw, "%s\tjobs %d / jobs %d\t%.2fx\t\t\t%.2fx\t\t\t\n", r.Pair, r.Runs[1].Jobs, r.Runs[0].Jobs, r.ExportRatio, r.ImportRatio)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "(%d CPUs here; cpu s / s is how many cores were busy; timings compare only within one run)\n", runtime.NumCPU())
}

func mb(n int64) string { return fmt.Sprintf("%.2f", float64(n)/1e6) }

func printTable(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pair\tfull MB\tlayer-level MB\tdiffah MB\tchanged layers: diffah MB\tzstd --patch-from MB\tbsdiff MB\tdiffah/zstd\tdiffah/bsdiff\tdiffah/best\tdiffah/full\tpack MB/s\tresolve MB/s\tgzip -6 MB/s\tzstd ref MB/s\tpack RSS MiB\tresolve RSS MiB\tbyte-identical\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%.3f\t%.3f\t%.4f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%v\t\n", r.Pair, mb(r.FullTarget), mb(r.LayerDelta), mb(r.DiffahDelta),
			mb(r.DiffahChanged), mb(r.ZstdRef), mb(r.BsdiffRef), r.RatioVsZstd, r.RatioVsBsdiff, r.RatioVsBest, r.RatioVsFull, r.PackMBps, r.ResolveMBps, r.Gzip6MBps, r.ZstdRefMBps, r.PackRSSMiB, r.ResolveRSSMiB, r.ByteIdentical)
	}
	tw.Flush()
}
