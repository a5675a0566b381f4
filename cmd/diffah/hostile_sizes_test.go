package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// Hostile sizes, digests that would become paths, and sidecars that lie
// about what the verified bytes say, through the real binary: each is
// refused as hostile input (exit 4) with a message naming what, no panic,
// and nothing left behind — whether the sidecar arrives in an archive
// (unpack, import, inspect) or is written over an unpacked layout's own
// (resolve).
func TestHostileSizesDigestsLies(t *testing.T) {
	a := newHostileFixture(t)
	const maxInt = "9223372036854775807"
	plain := func(f func(m map[string]any)) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			return editSidecar(t, a.good, func(m map[string]any, e []tent) []tent { f(m); return e })
		}
	}
	target := func(m map[string]any) map[string]any { return obj(obj(m["images"].([]any)[0])["target"]) }
	setManifestType := func(mt string) func(m map[string]any) {
		return func(m map[string]any) {
			obj(target(m)["manifest"])["mediaType"] = mt
			obj(blobsOf(m)[0])["mediaType"] = mt
		}
	}
	docker := "application/vnd.docker.distribution.manifest.v2+json"
	cases := []struct {
		name    string
		archive func(t *testing.T) []byte
		cmds    []string // unpack, import, resolve, inspect
		msg     string
	}{
		// --- sizes no real blob has
		{"size/entry-max-int64", plain(func(m map[string]any) {
			obj(entriesOf(m)[1])["size"] = json.Number(maxInt)
			obj(blobsOf(m)[1])["size"] = json.Number(maxInt)
		}), []string{"unpack", "import", "inspect", "resolve"}, "size 9223372036854775807 is larger than any real blob"},
		{"size/reused-2^62", plain(func(m map[string]any) { obj(blobsOf(m)[2])["size"] = json.Number("4611686018427387904") }),
			[]string{"unpack", "import", "inspect", "resolve"}, "larger than any real blob"},
		{"size/uncompressed-max-int64", plain(func(m map[string]any) { obj(obj(blobsOf(m)[3])["patch"])["uncompressedSize"] = json.Number(maxInt) }),
			[]string{"unpack", "import", "inspect", "resolve"}, "uncompressedSize.*larger than any real blob"},
		{"size/source-negative", plain(func(m map[string]any) {
			obj(obj(blobsOf(m)[3])["patch"])["sources"].([]any)[0].(map[string]any)["size"] = json.Number("-9223372036854775808")
		}), []string{"unpack", "inspect", "resolve"}, "negative size"},
		{"size/pax-header-max-int64", func(t *testing.T) []byte {
			e := readTar(t, a.good)
			return withPAXSize(t, e[:1], e[1].hdr)
		}, []string{"unpack", "import", "inspect"}, `entry "blobs/sha256/[0-9a-f]+": size 9223372036854775807 is larger than any real blob`},
		{"size/pax-sidecar-max-int64", func(t *testing.T) []byte {
			e := readTar(t, a.good)
			return withPAXSize(t, nil, e[0].hdr)
		}, []string{"unpack", "import", "inspect"}, `entry "diffah.json": size 9223372036854775807 is larger than any real blob`},

		// --- digests that would become paths
		{"digest/dotdot", plain(func(m map[string]any) { obj(blobsOf(m)[2])["digest"] = "sha256:../../../../etc/passwd" }),
			[]string{"unpack", "import", "inspect", "resolve"}, "malformed"},
		{"digest/no-colon", plain(func(m map[string]any) { obj(blobsOf(m)[2])["digest"] = "etcpasswd" }),
			[]string{"unpack", "import", "inspect", "resolve"}, "only sha256"},
		{"digest/diffid-upper", plain(func(m map[string]any) { obj(blobsOf(m)[3])["diffID"] = "sha256:" + strings.Repeat("A", 64) }),
			[]string{"unpack", "inspect", "resolve"}, "malformed"},
		{"digest/baseline-md5", plain(func(m map[string]any) {
			obj(m["images"].([]any)[0])["baseline"].(map[string]any)["manifestDigest"] = "md5:" + strings.Repeat("a", 32)
		}), []string{"unpack", "inspect", "resolve"}, "only sha256"},

		// --- lies: copies in the sidecar of what the verified bytes say
		{"lie/manifest-media-type", plain(setManifestType(docker)),
			[]string{"unpack", "import", "resolve"}, `media type "application/vnd.docker.distribution.manifest.v2\+json", the manifest's own is "application/vnd.oci.image.manifest.v1\+json"`},
		{"lie/manifest-media-type-index", plain(setManifestType("application/vnd.oci.image.index.v1+json")),
			[]string{"unpack", "import", "resolve"}, "the manifest's own is"},
		{"lie/config-media-type", plain(func(m map[string]any) {
			obj(blobsOf(m)[1])["mediaType"] = "application/vnd.docker.container.image.v1+json"
		}),
			[]string{"unpack", "import", "resolve"}, "disagrees with the manifest .*blob 0"},
		{"lie/reused-layer-media-type", plain(func(m map[string]any) {
			obj(blobsOf(m)[2])["mediaType"] = "application/vnd.oci.image.layer.v1.tar+zstd"
		}), []string{"unpack", "import", "resolve"}, "disagrees with the manifest .*blob 1"},
		{"lie/reused-layer-diffid", plain(func(m map[string]any) { obj(blobsOf(m)[2])["diffID"] = "sha256:" + strings.Repeat("0", 64) }),
			[]string{"unpack", "import", "resolve"}, "disagrees with the config .*layer 0 has diffID sha256:0000"},
		{"lie/platform", plain(func(m map[string]any) { target(m)["platform"] = "windows/arm64" }),
			[]string{"unpack", "import", "resolve"}, `platform "windows/arm64", the config says "linux/`},
	}
	for _, c := range cases {
		for _, cmd := range c.cmds {
			t.Run(c.name+"/"+cmd, func(t *testing.T) {
				root := t.TempDir()
				dir := filepath.Join(root, "run")
				os.Mkdir(dir, 0o755)
				tmp := privateTmp(t, root)
				input := c.archive(t)
				os.WriteFile(filepath.Join(dir, "in.dlt"), input, 0o644)
				want := []string{"in.dlt"}
				var code int
				var stdout, stderr string
				switch cmd {
				case "unpack":
					code, stdout, stderr = runIn(t, a.bin, dir, input, "unpack", "-o", "out")
				case "import":
					code, stdout, stderr = runIn(t, a.bin, dir, nil, "import", "--baseline", "oci:"+a.fx+"/v1", "-o", "oci:out:app", "in.dlt")
				case "inspect":
					code, stdout, stderr = runIn(t, a.bin, dir, nil, "inspect", "--json", "in.dlt")
				case "resolve":
					if code, _, e := runIn(t, a.bin, dir, a.good, "unpack", "-o", "lay"); code != 0 {
						t.Fatal(e)
					}
					sc := readTar(t, input)
					if len(sc) == 0 || sc[0].hdr.Name != "diffah.json" {
						t.Skip("no sidecar to put in place")
					}
					p := filepath.Join(dir, "lay", "diffah", "sidecar.json")
					os.Chmod(p, 0o644)
					os.WriteFile(p, sc[0].data, 0o644)
					before := treeSum(t, filepath.Join(dir, "lay"))
					want = append(want, "lay")
					code, stdout, stderr = runIn(t, a.bin, dir, nil, "resolve", "--baseline", "oci:"+a.fx+"/v1", "lay")
					if treeSum(t, filepath.Join(dir, "lay")) != before {
						t.Errorf("a failed resolve changed the layout")
					}
				}
				checkRefused(t, code, stdout, stderr, c.msg, cmd != "resolve")
				if got := names(t, dir); strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("left behind: %v (want %v)", got, want)
				}
				if got := names(t, tmp); len(got) > 0 {
					t.Errorf("left in the temporary directory: %v", got)
				}
			})
		}
	}
}

// withPAXSize appends a PAX header whose size record is 2^63-1 (too
// large for the ustar field), followed by only a little data.
func withPAXSize(t *testing.T, ents []tent, hdr tar.Header) []byte {
	hdr.Format = tar.FormatPAX
	return withHeader(t, ents, hdr, math.MaxInt64)
}

// privateTmp points TMPDIR (inherited by the binary) at an empty
// directory under root, so a test can check that nothing was left there.
func privateTmp(t *testing.T, root string) string {
	t.Helper()
	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	return tmp
}

// checkRefused asserts an integrity refusal in diffah's error form.
func checkRefused(t *testing.T, code int, stdout, stderr, msg string, quiet bool) {
	t.Helper()
	if code != int(fault.Integrity) {
		t.Fatalf("exit %d, want %d:\n%s", code, fault.Integrity, stderr)
	}
	if !regexp.MustCompile(`(?m)^diffah: `).MatchString(stderr) {
		t.Errorf("stderr lacks a \"diffah: \" error line:\n%s", stderr)
	}
	if !regexp.MustCompile(msg).MatchString(stderr) {
		t.Errorf("stderr does not match %q:\n%s", msg, stderr)
	}
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("a panic:\n%s", stderr)
	}
	if quiet && stdout != "" {
		t.Errorf("wrote %d bytes to stdout", len(stdout))
	}
}

// TestInspectTotalsLargeSizes: the largest sizes a sidecar may state add
// up in inspect's totals without overflowing.
func TestInspectTotalsLargeSizes(t *testing.T) {
	a := newHostileFixture(t)
	arch := editSidecar(t, a.good, func(m map[string]any, e []tent) []tent {
		for _, b := range blobsOf(m)[2:] {
			obj(b)["size"] = json.Number(fmt.Sprint(int64(1) << 40))
		}
		return e
	})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.dlt"), arch, 0o644)
	code, out, e := runIn(t, a.bin, dir, nil, "inspect", "--json", "in.dlt")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	for _, n := range regexp.MustCompile(`"[A-Za-z]*(Bytes|Size|bytes)": *(-?\d+)`).FindAllStringSubmatch(out, -1) {
		if strings.HasPrefix(n[2], "-") {
			t.Errorf("negative total %s", n[0])
		}
	}
}

// TestCompletedLayoutHostileIndex: resolve's rerun on a completed layout
// reads index.json, which may have been edited: its digests must not
// name files outside the layout, its sizes not overflow, its media types
// not disagree with the manifests.
func TestCompletedLayoutHostileIndex(t *testing.T) {
	a := newHostileFixture(t)
	root := t.TempDir()
	if code, _, e := runIn(t, a.bin, root, a.good, "unpack", "-o", "lay"); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := runIn(t, a.bin, root, nil, "resolve", "--baseline", "oci:"+a.fx+"/v1", "lay"); code != 0 {
		t.Fatal(e)
	}
	idxPath := filepath.Join(root, "lay", "index.json")
	good, _ := os.ReadFile(idxPath)
	// A file outside the layout that a "sha256:../../x" digest would reach.
	os.WriteFile(filepath.Join(root, "outside"), []byte("secret"), 0o644)
	var idx map[string]any
	json.Unmarshal(good, &idx)
	man := obj(idx["manifests"].([]any)[0])
	digest0, size0, mt0 := man["digest"], man["size"], man["mediaType"]
	for _, c := range []struct {
		name string
		edit func()
		msg  string
	}{
		{"dotdot", func() { man["digest"] = "sha256:../../outside" }, "malformed"},
		{"no-colon", func() { man["digest"] = "outside" }, "only sha256"},
		{"size-max-int64", func() { man["size"] = json.Number("9223372036854775807") }, "larger than any real blob"},
		{"size-negative", func() { man["size"] = -1 }, "negative size"},
		{"media-type", func() { man["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json" }, `index.json says media type .*docker.*the manifest's own is`},
	} {
		t.Run(c.name, func(t *testing.T) {
			man["digest"], man["size"], man["mediaType"] = digest0, size0, mt0
			c.edit()
			b, _ := json.Marshal(idx)
			os.Chmod(idxPath, 0o644)
			if err := os.WriteFile(idxPath, b, 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runIn(t, a.bin, root, nil, "resolve", "lay")
			checkRefused(t, code, stdout, stderr, c.msg, false)
		})
	}
	os.WriteFile(idxPath, good, 0o644)
	if code, _, e := runIn(t, a.bin, root, nil, "resolve", "lay"); code != 0 {
		t.Fatalf("the restored layout does not verify: %s", e)
	}
}
