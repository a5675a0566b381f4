package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/membudget"
	"github.com/diffah/diffah/internal/peakrss"
	pt "github.com/diffah/diffah/tarpatch/patchtest"
)

// Decompression bombs in patches, run through the real binary under
// /usr/bin/time -v: each must be refused as hostile input (exit 4), with
// nothing left behind, and with a peak RSS below maxRSS for the whole
// process — with the default --jobs and with many more workers.

// maxRSS is the bound SECURITY.md states for any hostile archive.
const maxRSS = membudget.ProcessLimit

// deltaMax is the most one decode may hold at once: a filled op-stream
// window and history ring (a long literal run of zeros, short enough for
// its recompression to fit the smallest patched blob), then a DELTA with the
// largest dictionary, output and payload tarpatch's limits allow
// (MaxDict 32 MiB, MaxOut 12 MiB).
func deltaMax(t *testing.T, i int) []byte {
	return pt.Patch(t, 32<<20, pt.Lit(24*mib+uint64(i)), pt.Delta(t, srcLen, 32*mib, 12*mib, 13*mib))
}

// matchMax: like deltaMax, then a MATCH with the largest dictionary and
// output, number sections filled to their bounds with incompressible
// bytes, and a literal section decoding past its bound.
func matchMax(t *testing.T, i int) []byte {
	const outLen = 12 * mib
	nums := 10 * (outLen/64 + 1)
	var secs [4][]byte
	for s, n := range []int{nums, nums, nums, 13 * mib} {
		secs[s] = pt.Random(t, n, int64(s))
	}
	return pt.Patch(t, 32<<20, pt.Lit(24*mib+uint64(i)), pt.Match(srcLen, 32*mib, outLen, secs))
}

const (
	mib = 1 << 20
	// srcLen is the uncompressed size of the fixture's first patch
	// source, at least: ranges of it make the dictionaries.
	srcLen = 36025
)

// bombFixture is an archive with several patched layers, its baseline
// and the binary.
type bombFixture struct {
	bin, base string
	good      []byte
}

// newBombFixture exports a delta between two images of n layers made
// here: each layer is 2 MiB of noise (so its blob leaves room for what a
// bomb writes before it is caught), edited in a few bytes in the target,
// so every layer is patched.
func newBombFixture(t *testing.T, bin string, n int) *bombFixture {
	t.Helper()
	dir := t.TempDir()
	var olds, news []v1.Layer
	for i := range n {
		body := make([]byte, 2<<20)
		rand.New(rand.NewSource(int64(i))).Read(body)
		olds = append(olds, tarLayer(t, fmt.Sprintf("data/f%d", i), body))
		body[1<<20] ^= 0xff
		news = append(news, tarLayer(t, fmt.Sprintf("data/f%d", i), body))
	}
	writeLayout(t, filepath.Join(dir, "v1"), olds...)
	writeLayout(t, filepath.Join(dir, "v2"), news...)
	if code, _, e := runIn(t, bin, dir, nil, "export", "--target", "oci:v2", "--baseline", "oci:v1", "-o", "d.dlt"); code != 0 {
		t.Fatal(e)
	}
	good, _ := os.ReadFile(filepath.Join(dir, "d.dlt"))
	patched := 0
	for _, b := range blobsOf(sidecarMap(t, readTar(t, good)[0].data)) {
		if obj(b)["action"] == "patch" {
			patched++
		}
	}
	if patched != n {
		t.Fatalf("%d of %d layers patched", patched, n)
	}
	return &bombFixture{bin: bin, base: "oci:" + filepath.Join(dir, "v1"), good: good}
}

// tarLayer is a gzip layer (ggcr's writer: reproducible) of one file.
func tarLayer(t *testing.T, name string, body []byte) v1.Layer {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(body)), Mode: 0o644, ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb.Bytes())), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// bombArchive rewrites a good archive: every patched layer gets the
// patch made by mk (i counts patched layers) and, with recipe set, that
// recipe. The layers' uncompressedSize (a sidecar field no verified byte
// repeats) is set to the largest a sidecar may state, so only the
// decoder's own bounds hold.
func bombArchive(t *testing.T, good []byte, recipe map[string]any, mk func(i int) []byte) []byte {
	t.Helper()
	ents := readTar(t, good)
	m := sidecarMap(t, ents[0].data)
	var kept []tent
	var entries []any
	for i, e := range entriesOf(m) {
		if strings.HasPrefix(obj(e)["name"].(string), "blobs/") {
			entries = append(entries, e)
			kept = append(kept, ents[i+1])
		}
	}
	kept = append([]tent{ents[0]}, kept...)
	i := 0
	for _, b := range blobsOf(m) {
		if obj(b)["action"] != "patch" {
			continue
		}
		data := mk(i) // distinct per layer: entry names come from digests
		sum := fmt.Sprintf("%x", sha256Sum(data))
		name := "patches/sha256/" + sum
		p := obj(obj(b)["patch"])
		p["entry"] = name
		p["uncompressedSize"] = json.Number(strconv.FormatInt(1<<40, 10))
		if recipe != nil {
			p["recipe"] = recipe
		}
		entries = append(entries, map[string]any{"name": name, "size": json.Number(strconv.Itoa(len(data))), "digest": "sha256:" + sum})
		kept = append(kept, tent{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, data})
		i++
	}
	m["entries"] = entries
	kept[0].data = jsonBytes(t, m)
	return writeTar(t, kept)
}

// rssRun runs the binary and returns its exit code, stderr and peak RSS
// in bytes.
func rssRun(t *testing.T, bin, dir string, args ...string) (int, string, int64) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// The bound assumes diffah's own soft heap limit (SECURITY.md).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	rss, err := peakrss.Run(cmd)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("diffah died of %v:\n%s", ws.Signal(), errb.String())
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return code, errb.String(), rss
}

func TestHostileBombsMemory(t *testing.T) {
	if !peakrss.Available() {
		t.Skip("needs GNU time (apt-get install time)")
	}
	a := newHostileFixture(t)
	fx := map[int]*bombFixture{2: {bin: a.bin, base: "oci:" + a.fx + "/v1", good: a.good}, 6: newBombFixture(t, a.bin, 6)}
	cases := []struct {
		name   string
		layers int // patched layers: 2 (the fixture's) or 6
		jobs   string
		recipe map[string]any
		mk     func(t *testing.T, i int) []byte
		msg    string
	}{
		{name: "match", mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 1<<20, pt.MatchZeros(t, 12*mib+uint64(i), 120*mib))
		}, msg: "match section|match"},
		{name: "match-old-max", mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 1<<20, pt.MatchZeros(t, 64*mib+uint64(i), 640*mib))
		}, msg: "match output length|match section|match"},
		{name: "delta", mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 1<<20, pt.Delta(t, srcLen, 96*mib, 64*mib+uint64(i), 72*mib))
		}, msg: "dictionary|delta"},
		{name: "window", mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 256<<20, pt.Lit(300*mib+uint64(i)))
		}, msg: "window"},
		{name: "recipe", recipe: map[string]any{"format": "gzip", "impl": "pgzip", "level": 1, "blockSize": 64 << 20, "blocks": 1024}, mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 1<<20, pt.Lit(1<<30+uint64(i)))
		}, msg: "recipe"},
		{name: "six-match-layers", layers: 6, mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 1<<20, pt.MatchZeros(t, 12*mib+uint64(i), 120*mib))
		}, msg: "match"},
		{name: "delta-max", mk: deltaMax, msg: "delta payload"},
		{name: "six-delta-max-layers", layers: 6, mk: deltaMax, msg: "delta payload"},
		{name: "match-max", mk: matchMax, msg: "match section 3"},
		{name: "six-match-max-layers-16-jobs", layers: 6, jobs: "16", mk: matchMax, msg: "match section 3"},
		{name: "six-delta-max-layers-16-jobs", layers: 6, jobs: "16", mk: deltaMax, msg: "delta payload"},
		{name: "six-match-layers-16-jobs", layers: 6, jobs: "16", mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 1<<20, pt.MatchZeros(t, 12*mib+uint64(i), 120*mib))
		}, msg: "match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "run")
			os.Mkdir(dir, 0o755)
			tmp := privateTmp(t, root)
			f := fx[max(c.layers, 2)]
			arch := bombArchive(t, f.good, c.recipe, func(i int) []byte { return c.mk(t, i) })
			if err := os.WriteFile(filepath.Join(dir, "in.dlt"), arch, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"import", "--baseline", f.base, "-o", "oci:out:app"}
			if c.jobs != "" {
				args = append(args, "--jobs", c.jobs)
			}
			code, stderr, rss := rssRun(t, f.bin, dir, append(args, "in.dlt")...)
			t.Logf("%s: %d KiB archive, exit %d, peak RSS %d MiB", c.name, len(arch)>>10, code, rss>>20)
			if code != int(fault.Integrity) {
				t.Errorf("exit %d, want %d:\n%s", code, fault.Integrity, stderr)
			}
			if !regexp.MustCompile(c.msg).MatchString(stderr) {
				t.Errorf("stderr does not match %q:\n%s", c.msg, stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("a panic:\n%s", stderr)
			}
			if rss >= maxRSS {
				t.Errorf("peak RSS %d MiB, want < %d MiB", rss>>20, maxRSS>>20)
			}
			if got := names(t, dir); strings.Join(got, ",") != "in.dlt" {
				t.Errorf("left behind: %v", got)
			}
			if got := names(t, tmp); len(got) > 0 {
				t.Errorf("left in the temporary directory: %v", got)
			}
		})
	}
}
