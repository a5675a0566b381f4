package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/membudget"
	pt "github.com/diffah/diffah/tarpatch/patchtest"
)

// Decompression bombs in patches, run through the real binary under
// /usr/bin/time -v: each must be refused as hostile input (exit 4), with
// nothing left behind, and with a peak RSS below maxRSS for the whole
// process — with the default --jobs and with many more workers.

// maxRSS is the bound SECURITY.md states for any hostile archive.
const maxRSS = membudget.ProcessLimit

// deltaMax is the most one decode may hold at once: a full op-stream
// window and history ring (a long literal run), then a DELTA with the
// largest dictionary, output and payload tarpatch's limits allow
// (MaxDict 32 MiB, MaxOut 12 MiB).
func deltaMax(t *testing.T, i int) []byte {
	return pt.Patch(t, 32<<20, pt.Lit(40*mib+uint64(i)), pt.Delta(t, srcLen, 32*mib, 12*mib, 13*mib))
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
	return pt.Patch(t, 32<<20, pt.Lit(40*mib+uint64(i)), pt.Match(srcLen, 32*mib, outLen, secs))
}

const (
	mib = 1 << 20
	// srcLen is the uncompressed size of the fixture's first patch
	// source, at least: ranges of it make the dictionaries.
	srcLen = 36025
)

// bombArchive rewrites the fixture archive: every patched layer gets the
// patch made by mk (i counts patched layers), and extra more patched
// layers are added (fake digests: the bombs must go off before the
// manifest check would notice them). uncompressedSize is set to the
// largest a sidecar may state (and the layer's size too, so the
// recompressed output's bound does not stop the decoder first): only the
// decoder's own bounds hold.
func bombArchive(t *testing.T, a *auditFixture, extra int, recipe map[string]any, mk func(i int) []byte) []byte {
	t.Helper()
	ents := readTar(t, a.good)
	m := sidecarMap(t, ents[0].data)
	blobs := blobsOf(m)
	var tmpl map[string]any
	for _, b := range blobs {
		if obj(b)["action"] == "patch" {
			tmpl = obj(b)
		}
	}
	for i := range extra {
		b := map[string]any{}
		for k, v := range tmpl {
			b[k] = v
		}
		b["digest"] = fmt.Sprintf("sha256:%x", sha256Sum([]byte(fmt.Sprint("fake layer ", i))))
		p := map[string]any{}
		for k, v := range obj(tmpl["patch"]) {
			p[k] = v
		}
		b["patch"] = p
		blobs = append(blobs, b)
	}
	obj(m["images"].([]any)[0])["blobs"] = blobs
	// Rebuild the entries: manifest and config as they were, then one
	// patch per patched layer.
	kept := ents[:3]
	var entries []any
	for _, e := range entriesOf(m)[:2] {
		entries = append(entries, e)
	}
	i := 0
	for _, b := range blobs {
		if obj(b)["action"] != "patch" {
			continue
		}
		data := mk(i) // distinct per layer: entry names come from digests
		sum := fmt.Sprintf("%x", sha256Sum(data))
		name := "patches/sha256/" + sum
		p := obj(obj(b)["patch"])
		p["entry"] = name
		p["uncompressedSize"] = json.Number(strconv.FormatInt(1<<40, 10))
		obj(b)["size"] = json.Number(strconv.FormatInt(1<<40, 10))
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

// rssRun runs the binary under /usr/bin/time -v and returns its exit
// code, stderr and peak RSS in bytes.
func rssRun(t *testing.T, bin, dir string, args ...string) (int, string, int64) {
	t.Helper()
	cmd := exec.Command("/usr/bin/time", append([]string{"-v", bin}, args...)...)
	cmd.Dir = dir
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	out := errb.String()
	m := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no RSS in /usr/bin/time output:\n%s", out)
	}
	kb, _ := strconv.ParseInt(m[1], 10, 64)
	if i := strings.Index(out, "\tCommand being timed"); i >= 0 {
		out = out[:i]
	}
	if regexp.MustCompile(`Command terminated by signal`).MatchString(errb.String()) {
		t.Fatalf("diffah died of a signal:\n%s", errb.String())
	}
	return code, out, kb << 10
}

func TestHostileBombsMemory(t *testing.T) {
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Skip("needs /usr/bin/time (apt-get install time)")
	}
	a := newAuditFixture(t)
	cases := []struct {
		name   string
		extra  int // more patched layers than the fixture's two
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
		{name: "six-match-layers", extra: 4, mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 1<<20, pt.MatchZeros(t, 12*mib+uint64(i), 120*mib))
		}, msg: "match"},
		{name: "delta-max", mk: deltaMax, msg: "delta payload"},
		{name: "six-delta-max-layers", extra: 4, mk: deltaMax, msg: "delta payload"},
		{name: "match-max", mk: matchMax, msg: "match section 3"},
		{name: "four-match-max-layers-16-jobs", extra: 2, jobs: "16", mk: matchMax, msg: "match section 3"},
		{name: "six-delta-max-layers-16-jobs", extra: 4, jobs: "16", mk: deltaMax, msg: "delta payload"},
		{name: "six-match-layers-16-jobs", extra: 4, jobs: "16", mk: func(t *testing.T, i int) []byte {
			return pt.Patch(t, 1<<20, pt.MatchZeros(t, 12*mib+uint64(i), 120*mib))
		}, msg: "match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "run")
			os.Mkdir(dir, 0o755)
			arch := bombArchive(t, a, c.extra, c.recipe, func(i int) []byte { return c.mk(t, i) })
			if err := os.WriteFile(filepath.Join(dir, "in.dlt"), arch, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"import", "--baseline", "oci:" + a.fx + "/v1", "-o", "oci:out:app"}
			if c.jobs != "" {
				args = append(args, "--jobs", c.jobs)
			}
			code, stderr, rss := rssRun(t, a.bin, dir, append(args, "in.dlt")...)
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
		})
	}
}
