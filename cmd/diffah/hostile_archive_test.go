package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/diffah/diffah/fault"
)

// The hostile-input table of issue 5, run against the real binary (built
// with go build): every case asserts the exit code, that stderr says what
// happened in diffah's "diffah: ..." form, that no output exists, and that
// nothing else was written in or around the run directory.

// tent is one tar entry of a crafted archive.
type tent struct {
	hdr  tar.Header
	data []byte
}

func readTar(t *testing.T, b []byte) []tent {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []tent
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		d, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tent{*h, d})
	}
}

func writeTar(t *testing.T, ents []tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		h.Size = int64(len(e.data))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sidecarMap decodes the sidecar (numbers kept exact).
func sidecarMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editSidecar rewrites the archive with the sidecar changed by f; f may
// also edit the other entries.
func editSidecar(t *testing.T, good []byte, f func(m map[string]any, ents []tent) []tent) []byte {
	t.Helper()
	ents := readTar(t, good)
	m := sidecarMap(t, ents[0].data)
	ents = f(m, ents)
	ents[0].data = jsonBytes(t, m)
	return writeTar(t, ents)
}

func blobsOf(m map[string]any) []any {
	return m["images"].([]any)[0].(map[string]any)["blobs"].([]any)
}

func entriesOf(m map[string]any) []any { return m["entries"].([]any) }

func obj(v any) map[string]any { return v.(map[string]any) }

// withHeader appends a raw tar header claiming size bytes, followed by
// only a little data: a reader must refuse it from the header alone.
func withHeader(t *testing.T, ents []tent, hdr tar.Header, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	hdr.Size = size
	if hdr.Format != tar.FormatPAX {
		hdr.Format = tar.FormatGNU // USTAR cannot say 1 TiB
	}
	if err := tw.WriteHeader(&hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write(make([]byte, 4096))
	tw.Flush() // incomplete on purpose: no Close
	return buf.Bytes()
}

func zstdOf(t *testing.T, window int, parts ...[]byte) []byte {
	t.Helper()
	var z bytes.Buffer
	enc, err := zstd.NewWriter(&z, zstd.WithWindowSize(window), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if _, err := enc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// runIn runs the binary in dir and returns its exit code, stdout, stderr.
func runIn(t *testing.T, bin, dir string, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err == nil {
		return 0, out.String(), errb.String()
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("running %v: %v", args, err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("diffah %v died of %v", args, ws.Signal())
	}
	return ee.ExitCode(), out.String(), errb.String()
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// hostileFixture is what the table cases derive their input from.
type hostileFixture struct {
	fx, bin string
	good    []byte // uncompressed archive v1→v2 with two patched layers
	goodZ   []byte // the same, zstd-compressed by pack
	sc      []byte // its sidecar
}

func newHostileFixture(t *testing.T) *hostileFixture {
	fx := fixtures(t)
	bin := buildBinary(t)
	w := t.TempDir()
	for _, z := range []string{"none", "zstd"} {
		if code, _, e := runIn(t, bin, w, nil, "export", "--compress", z, "--target", "oci:"+fx+"/v2", "--baseline", "oci:"+fx+"/v1", "-o", z+".dlt"); code != 0 {
			t.Fatal(e)
		}
	}
	a := &hostileFixture{fx: fx, bin: bin}
	a.good, _ = os.ReadFile(filepath.Join(w, "none.dlt"))
	a.goodZ, _ = os.ReadFile(filepath.Join(w, "zstd.dlt"))
	ents := readTar(t, a.good)
	a.sc = ents[0].data
	// The cases below rely on this shape: sidecar, manifest, config, two
	// patches; blobs manifest, config, reused layer, two patched layers.
	if len(ents) != 5 || len(blobsOf(sidecarMap(t, a.sc))) != 5 || obj(blobsOf(sidecarMap(t, a.sc))[3])["action"] != "patch" {
		t.Fatalf("unexpected fixture archive shape: %d entries", len(ents))
	}
	return a
}

// corruptBaseline copies the v1 fixture and overwrites one byte of the
// blob of layer i, keeping its name (digest).
func corruptBaseline(t *testing.T, fx, dst string, layer int) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", filepath.Join(fx, "v1"), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	b, _ := os.ReadFile(filepath.Join(dst, "index.json"))
	json.Unmarshal(b, &idx)
	blob := func(d string) string { return filepath.Join(dst, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	var man struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	b, _ = os.ReadFile(blob(idx.Manifests[0].Digest))
	json.Unmarshal(b, &man)
	p := blob(man.Layers[layer].Digest)
	os.Chmod(p, 0o644)
	data, _ := os.ReadFile(p)
	data[100] ^= 0x5a
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostileArchiveTable(t *testing.T) {
	a := newHostileFixture(t)
	evil := filepath.Join(os.TempDir(), fmt.Sprintf("diffah-hostile-evil-%d", os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(evil) })

	type tc struct {
		name string
		// archive builds the hostile archive from the good one.
		archive func(t *testing.T) []byte
		// cmd: "unpack" (archive on stdin), "import" (archive as a file,
		// output oci:out:app), "resolve" (a good unpack, then the
		// layout's sidecar replaced, then resolve), "pack" (a plan on
		// stdin, -o out.dlt).
		cmd string
		// baseline for import/resolve (default: the v1 fixture).
		baseline func(t *testing.T, dir string) string
		code     fault.Kind
		msg      string
	}
	n := len(a.good)
	cut := func(k int) func(*testing.T) []byte {
		return func(*testing.T) []byte {
			if k < 0 {
				k += n
			}
			return a.good[:k]
		}
	}
	flipEntry := func(i, k int) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			ents := readTar(t, a.good)
			ents[i].data[k] ^= 1
			return writeTar(t, ents)
		}
	}
	rewrite := func(f func(ents []tent) []tent) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return writeTar(t, f(readTar(t, a.good))) }
	}
	add := func(h tar.Header) func(*testing.T) []byte {
		return rewrite(func(e []tent) []tent {
			if h.Mode == 0 {
				h.Mode = 0o644
			}
			var data []byte
			if h.Typeflag == tar.TypeReg {
				data = []byte("evil\n")
			}
			return append(e, tent{h, data})
		})
	}
	// insert puts a link or device with the name of the manifest entry
	// right where the manifest is expected.
	insert := func(h tar.Header) func(*testing.T) []byte {
		return rewrite(func(e []tent) []tent {
			h.Name = e[1].hdr.Name
			h.Mode = 0o777
			return append([]tent{e[0], {h, nil}}, e[1:]...)
		})
	}
	sidecarJSON := func(raw string) func(*testing.T) []byte {
		return rewrite(func(e []tent) []tent { e[0].data = []byte(raw); return e })
	}
	edit := func(f func(m map[string]any, ents []tent) []tent) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return editSidecar(t, a.good, f) }
	}
	plain := func(f func(m map[string]any)) func(*testing.T) []byte {
		return edit(func(m map[string]any, e []tent) []tent { f(m); return e })
	}
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)

	cases := []tc{
		// --- truncated anywhere
		{name: "cut/empty", archive: cut(0), cmd: "unpack", code: fault.Integrity, msg: "empty or not a diffah archive"},
		{name: "cut/sidecar-header", archive: cut(100), cmd: "unpack", code: fault.Integrity, msg: "unexpected EOF"},
		{name: "cut/sidecar", archive: cut(1000), cmd: "unpack", code: fault.Integrity, msg: `reading entry "diffah.json".*unexpected EOF`},
		{name: "cut/blob", archive: cut(n / 2), cmd: "unpack", code: fault.Integrity, msg: "truncated|unexpected EOF"},
		{name: "cut/last-byte", archive: cut(-1), cmd: "unpack", code: fault.Integrity, msg: "truncated"},
		{name: "cut/end-marker", archive: cut(-1024), cmd: "unpack", code: fault.Integrity, msg: "end-of-archive marker"},
		{name: "cut/half-end-marker", archive: cut(-512), cmd: "unpack", code: fault.Integrity, msg: "end-of-archive marker"},
		{name: "cut/zstd", archive: func(*testing.T) []byte { return a.goodZ[:len(a.goodZ)-3] }, cmd: "unpack", code: fault.Integrity, msg: "unpack"},
		{name: "cut/import", archive: cut(-700), cmd: "import", code: fault.Integrity, msg: "truncated|unexpected EOF"},

		// --- one flipped bit in each entry
		{name: "flip/sidecar-digest", archive: func(t *testing.T) []byte {
			ents := readTar(t, a.good)
			i := bytes.Index(ents[0].data, []byte(`"sha256:`)) + 10
			ents[0].data[i] ^= 1
			return writeTar(t, ents)
		}, cmd: "unpack", code: fault.Integrity, msg: "sidecar|diffah.json"},
		{name: "flip/sidecar-syntax", archive: func(t *testing.T) []byte {
			ents := readTar(t, a.good)
			ents[0].data[0] ^= 1 // '{' → 'z'
			return writeTar(t, ents)
		}, cmd: "unpack", code: fault.Integrity, msg: "not a JSON object|sidecar"},
		{name: "flip/manifest", archive: flipEntry(1, 10), cmd: "unpack", code: fault.Integrity, msg: `entry blobs/sha256/[0-9a-f]{64}.*content is sha256:.*expected sha256:`},
		{name: "flip/config", archive: flipEntry(2, 10), cmd: "unpack", code: fault.Integrity, msg: `content is sha256:.*expected sha256:`},
		{name: "flip/patch-1", archive: flipEntry(3, 10), cmd: "unpack", code: fault.Integrity, msg: `patches/sha256/.*content is sha256:`},
		{name: "flip/patch-2", archive: flipEntry(4, 10), cmd: "unpack", code: fault.Integrity, msg: `patches/sha256/.*content is sha256:`},
		{name: "flip/header-name", archive: func(t *testing.T) []byte {
			b := append([]byte{}, a.good...)
			off := 512 + (len(a.sc)+511)/512*512 + 20 // inside the name of the second header
			b[off] ^= 1
			return b
		}, cmd: "unpack", code: fault.Integrity, msg: "checksum|reordered or altered|invalid tar header"},

		// --- reordered, duplicated, missing, extra
		{name: "order/swap", archive: rewrite(func(e []tent) []tent { e[1], e[2] = e[2], e[1]; return e }), cmd: "unpack", code: fault.Integrity, msg: "entry 1 is .*the sidecar lists .* there: the archive was reordered or altered"},
		{name: "order/sidecar-not-first", archive: rewrite(func(e []tent) []tent { e[0], e[1] = e[1], e[0]; return e }), cmd: "unpack", code: fault.Integrity, msg: `expected "diffah.json"`},
		{name: "order/duplicate", archive: rewrite(func(e []tent) []tent { return append(e[:2], e[1:]...) }), cmd: "unpack", code: fault.Integrity, msg: "reordered or altered"},
		{name: "order/duplicate-last", archive: rewrite(func(e []tent) []tent { return append(e, e[len(e)-1]) }), cmd: "unpack", code: fault.Integrity, msg: "unexpected entry .*after the last listed entry"},
		{name: "order/missing", archive: rewrite(func(e []tent) []tent { return append(e[:2], e[3:]...) }), cmd: "unpack", code: fault.Integrity, msg: "reordered or altered"},
		{name: "order/missing-last", archive: rewrite(func(e []tent) []tent { return e[:len(e)-1] }), cmd: "unpack", code: fault.Integrity, msg: `ends before entry "patches/sha256/`},
		{name: "order/extra", archive: add(tar.Header{Name: "blobs/sha256/" + strings.Repeat("0", 64), Typeflag: tar.TypeReg}), cmd: "unpack", code: fault.Integrity, msg: `unexpected entry "blobs/sha256/0000`},
		{name: "order/extra-middle", archive: rewrite(func(e []tent) []tent {
			x := tent{tar.Header{Name: "README", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("hi")}
			return append(e[:2], append([]tent{x}, e[2:]...)...)
		}), cmd: "unpack", code: fault.Integrity, msg: `entry 2 is "README"`},
		{name: "order/trailing-garbage", archive: func(*testing.T) []byte { return append(append([]byte{}, a.good...), "garbage"...) }, cmd: "unpack", code: fault.Integrity, msg: "data after the end of the archive"},

		// --- names and types that would escape or alias the output
		{name: "name/dotdot", archive: add(tar.Header{Name: "../../evil", Typeflag: tar.TypeReg}), cmd: "unpack", code: fault.Integrity, msg: `unexpected entry "../../evil"`},
		{name: "name/dotdot-in-blobs", archive: add(tar.Header{Name: "blobs/sha256/../../../evil", Typeflag: tar.TypeReg}), cmd: "unpack", code: fault.Integrity, msg: `unexpected entry "blobs/sha256/../../../evil"`},
		{name: "name/absolute", archive: add(tar.Header{Name: evil, Typeflag: tar.TypeReg}), cmd: "unpack", code: fault.Integrity, msg: "unexpected entry \"" + regexp.QuoteMeta(evil)},
		{name: "name/symlink", archive: insert(tar.Header{Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}), cmd: "unpack", code: fault.Integrity, msg: `not a regular file \(type "2"\)`},
		{name: "name/symlink-dir", archive: insert(tar.Header{Typeflag: tar.TypeSymlink, Linkname: "../../.."}), cmd: "unpack", code: fault.Integrity, msg: `not a regular file`},
		{name: "name/hardlink", archive: insert(tar.Header{Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}), cmd: "unpack", code: fault.Integrity, msg: `not a regular file \(type "1"\)`},
		{name: "name/chardev", archive: insert(tar.Header{Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}), cmd: "unpack", code: fault.Integrity, msg: `not a regular file \(type "3"\)`},
		{name: "name/blockdev", archive: insert(tar.Header{Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0}), cmd: "unpack", code: fault.Integrity, msg: `not a regular file \(type "4"\)`},
		{name: "name/fifo", archive: insert(tar.Header{Typeflag: tar.TypeFifo}), cmd: "unpack", code: fault.Integrity, msg: `not a regular file \(type "6"\)`},
		{name: "name/dir", archive: insert(tar.Header{Typeflag: tar.TypeDir}), cmd: "unpack", code: fault.Integrity, msg: `not a regular file \(type "5"\)`},
		{name: "name/sidecar-symlink", archive: rewrite(func(e []tent) []tent {
			return append([]tent{{tar.Header{Name: "diffah.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, nil}}, e[1:]...)
		}), cmd: "unpack", code: fault.Integrity, msg: `not a regular file`},
		{name: "name/sidecar-entry-escapes", archive: plain(func(m map[string]any) {
			obj(entriesOf(m)[0])["name"] = "blobs/sha256/../../../evil"
		}), cmd: "unpack", code: fault.Integrity, msg: "does not match its digest|sidecar"},

		// --- a sidecar that lies
		{name: "lie/entry-size", archive: plain(func(m map[string]any) { obj(entriesOf(m)[1])["size"] = json.Number("1") }), cmd: "unpack", code: fault.Integrity, msg: "sidecar"},
		{name: "lie/entry-and-blob-size", archive: plain(func(m map[string]any) {
			obj(entriesOf(m)[1])["size"] = json.Number("528")
			obj(blobsOf(m)[1])["size"] = json.Number("528")
		}), cmd: "unpack", code: fault.Integrity, msg: `entry "blobs/sha256/[0-9a-f]+" is 527 bytes, the sidecar says 528`},
		{name: "lie/entry-digest", archive: edit(func(m map[string]any, e []tent) []tent {
			// a consistent lie: the config is said to be another blob, and
			// the tar entry renamed to match; its content gives it away
			fake := "sha256:" + strings.Repeat("ab", 32)
			name := "blobs/sha256/" + strings.Repeat("ab", 32)
			obj(entriesOf(m)[1])["digest"], obj(entriesOf(m)[1])["name"] = fake, name
			obj(blobsOf(m)[1])["digest"], obj(blobsOf(m)[1])["entry"] = fake, name
			e[2].hdr.Name = name
			return e
		}), cmd: "import", code: fault.Integrity, msg: `content is sha256:[0-9a-f]{64}, expected sha256:abab`},
		{name: "lie/manifest-digest", archive: edit(func(m map[string]any, e []tent) []tent {
			fake := "sha256:" + strings.Repeat("cd", 32)
			name := "blobs/sha256/" + strings.Repeat("cd", 32)
			im := obj(m["images"].([]any)[0])
			obj(obj(im["target"])["manifest"])["digest"] = fake
			obj(entriesOf(m)[0])["digest"], obj(entriesOf(m)[0])["name"] = fake, name
			obj(blobsOf(m)[0])["digest"], obj(blobsOf(m)[0])["entry"] = fake, name
			e[1].hdr.Name = name
			return e
		}), cmd: "import", code: fault.Integrity, msg: `content is sha256:[0-9a-f]{64}, expected sha256:cdcd`},
		{name: "lie/reused-size", archive: plain(func(m map[string]any) {
			b := obj(blobsOf(m)[2])
			b["size"] = json.Number(fmt.Sprint(mustInt(t, b["size"]) + 1))
		}), cmd: "import", code: fault.Integrity, msg: `(sha256:[0-9a-f]{64}: reused layer listed by baseline .*: \d+ bytes in the image's manifest, but \d+ bytes are expected|the sidecar disagrees with the manifest sha256:[0-9a-f]{64}: blob 1 is sha256:[0-9a-f]{64} \(\d+ bytes)`},
		{name: "lie/reused-digest", archive: plain(func(m map[string]any) {
			obj(blobsOf(m)[2])["digest"] = "sha256:" + strings.Repeat("ef", 32)
		}), cmd: "import", code: fault.Integrity, msg: `sha256:efef`},
		{name: "lie/patched-size", archive: plain(func(m map[string]any) { obj(blobsOf(m)[3])["size"] = json.Number("1000000000000") }), cmd: "import", code: fault.Integrity, msg: `the sidecar disagrees with the manifest .*\(1000000000000 bytes`},
		{name: "lie/uncompressed-size", archive: plain(func(m map[string]any) { obj(obj(blobsOf(m)[3])["patch"])["uncompressedSize"] = json.Number("10") }), cmd: "import", code: fault.Integrity, msg: "exceed the expected 10 bytes"},
		{name: "lie/diffid", archive: plain(func(m map[string]any) { obj(blobsOf(m)[3])["diffID"] = "sha256:" + strings.Repeat("0", 64) }), cmd: "import", code: fault.Integrity, msg: "the sidecar disagrees with the config .*diffID sha256:0000"},
		{name: "lie/resolve-on-disk", archive: plain(func(m map[string]any) { obj(blobsOf(m)[3])["diffID"] = "sha256:" + strings.Repeat("0", 64) }), cmd: "resolve", code: fault.Integrity, msg: "the layer's diffID is sha256:0000"},

		// --- versions
		{name: "version/major", archive: plain(func(m map[string]any) { m["version"] = "2.0" }), cmd: "unpack", code: fault.Integrity, msg: "unsupported format version 2.0"},
		{name: "version/far", archive: plain(func(m map[string]any) { m["version"] = "99.1" }), cmd: "import", code: fault.Integrity, msg: "unsupported format version 99.1"},
		{name: "version/garbage", archive: plain(func(m map[string]any) { m["version"] = "one" }), cmd: "unpack", code: fault.Integrity, msg: "MAJOR.MINOR"},
		{name: "version/number", archive: plain(func(m map[string]any) { m["version"] = json.Number("1") }), cmd: "unpack", code: fault.Integrity, msg: "sidecar"},

		// --- decompression bombs
		{name: "bomb/zstd-window", archive: func(t *testing.T) []byte {
			return zstdOf(t, 512<<20, a.good, make([]byte, 64<<20))
		}, cmd: "unpack", code: fault.Integrity, msg: "window"},
		{name: "bomb/zstd-zeros", archive: func(t *testing.T) []byte {
			return zstdOf(t, 1<<20, a.good, make([]byte, 256<<20))
		}, cmd: "unpack", code: fault.Integrity, msg: "padding after the end of the archive"},
		{name: "bomb/entry-larger-than-declared", archive: func(t *testing.T) []byte {
			e := readTar(t, a.good)
			return withHeader(t, e[:1], e[1].hdr, 1<<40)
		}, cmd: "unpack", code: fault.Integrity, msg: `is 1099511627776 bytes, the sidecar says \d+`},
		{name: "bomb/zstd-entry-larger-than-declared", archive: func(t *testing.T) []byte {
			e := readTar(t, a.good)
			return zstdOf(t, 1<<20, withHeader(t, e[:1], e[1].hdr, 1<<40))
		}, cmd: "unpack", code: fault.Integrity, msg: `is 1099511627776 bytes, the sidecar says \d+`},
		{name: "bomb/sidecar-header", archive: func(t *testing.T) []byte {
			e := readTar(t, a.good)
			return withHeader(t, nil, e[0].hdr, 1<<40)
		}, cmd: "unpack", code: fault.Integrity, msg: "more than the limit"},

		// --- hostile JSON sidecars
		{name: "json/huge", archive: sidecarJSON(`{"kind":"diffah-delta","version":"1.0","tool":"` + strings.Repeat("a", 17<<20) + `"}`), cmd: "unpack", code: fault.Integrity, msg: "more than the limit|larger than"},
		{name: "json/deep", archive: sidecarJSON(`{"kind":"diffah-delta","version":"1.0","tool":` + deep + `}`), cmd: "unpack", code: fault.Integrity, msg: "nested deeper|max depth"},
		{name: "json/deep-images", archive: sidecarJSON(`{"kind":"diffah-delta","version":"1.0","images":` + deep + `}`), cmd: "unpack", code: fault.Integrity, msg: "nested deeper|max depth"},
		{name: "json/wrong-type-images", archive: plain(func(m map[string]any) { m["images"] = "all" }), cmd: "unpack", code: fault.Integrity, msg: "sidecar"},
		{name: "json/wrong-type-size", archive: plain(func(m map[string]any) { obj(entriesOf(m)[0])["size"] = "715" }), cmd: "unpack", code: fault.Integrity, msg: "sidecar"},
		{name: "json/float-size", archive: plain(func(m map[string]any) { obj(entriesOf(m)[0])["size"] = json.Number("7.15e2") }), cmd: "unpack", code: fault.Integrity, msg: "sidecar"},
		{name: "json/negative-size", archive: plain(func(m map[string]any) { obj(entriesOf(m)[0])["size"] = json.Number("-1") }), cmd: "unpack", code: fault.Integrity, msg: "sidecar"},
		{name: "json/null-entries", archive: plain(func(m map[string]any) { m["entries"] = nil }), cmd: "unpack", code: fault.Integrity, msg: "sidecar"},
		{name: "json/array", archive: sidecarJSON(`[1,2,3]`), cmd: "unpack", code: fault.Integrity, msg: "not a JSON object|sidecar"},
		{name: "json/duplicate-key", archive: sidecarJSON(`{"kind":"diffah-delta","kind":"diffah-delta","version":"1.0"}`), cmd: "unpack", code: fault.Integrity, msg: "appears twice"},
		{name: "json/not-utf8", archive: sidecarJSON("{\"kind\":\"diffah-delta\",\"version\":\"1.0\",\"tool\":\"\xff\xfe\"}"), cmd: "unpack", code: fault.Integrity, msg: "sidecar"},

		// --- baselines that do not match their digests
		{name: "baseline/reused-layer-corrupt", archive: func(*testing.T) []byte { return a.good }, cmd: "import",
			baseline: func(t *testing.T, dir string) string {
				corruptBaseline(t, a.fx, filepath.Join(dir, "..", "badbase"), 0)
				return "oci:../badbase"
			},
			code: fault.Integrity, msg: `sha256:[0-9a-f]{64}`},
		{name: "baseline/patch-source-corrupt", archive: func(*testing.T) []byte { return a.good }, cmd: "import",
			baseline: func(t *testing.T, dir string) string {
				corruptBaseline(t, a.fx, filepath.Join(dir, "..", "badbase"), 2)
				return "oci:../badbase"
			},
			code: fault.Integrity, msg: `sha256:[0-9a-f]{64}`},
		{name: "baseline/resolve-corrupt", archive: func(*testing.T) []byte { return a.good }, cmd: "resolve",
			baseline: func(t *testing.T, dir string) string {
				corruptBaseline(t, a.fx, filepath.Join(dir, "..", "badbase"), 1)
				return "oci:../badbase"
			},
			code: fault.Integrity, msg: `sha256:[0-9a-f]{64}`},
		{name: "baseline/unrelated", archive: func(*testing.T) []byte { return a.good }, cmd: "import",
			baseline: func(t *testing.T, dir string) string { return "oci:" + a.fx + "/unrelated" },
			code:     fault.Integrity, msg: `(?s)preflight failed, nothing written.*5 blob\(s\) not reachable:(.*not in baseline){5}`},

		// --- patches that decode to the wrong bytes
		{name: "patch/swapped", archive: plain(func(m map[string]any) {
			// each patch is valid, but for the other layer
			b := blobsOf(m)
			obj(b[3])["patch"], obj(b[4])["patch"] = obj(b[4])["patch"], obj(b[3])["patch"]
		}), cmd: "import", code: fault.Integrity, msg: `layer sha256:[0-9a-f]{64}: (the patch rebuilt a tar with sha256 sha256:[0-9a-f]{64}, the layer's diffID is sha256:[0-9a-f]{64}|applying patch: .*output grows past the expected \d+ bytes)`},
		{name: "patch/swapped-resolve", archive: plain(func(m map[string]any) {
			b := blobsOf(m)
			obj(b[3])["patch"], obj(b[4])["patch"] = obj(b[4])["patch"], obj(b[3])["patch"]
			// Both layers fail; which error comes first depends on which
			// worker finishes first.
		}), cmd: "resolve", code: fault.Integrity, msg: `layer sha256:[0-9a-f]{64}: (the patch rebuilt a tar|applying patch: .*output grows past the expected \d+ bytes)`},
		{name: "patch/sources-reordered", archive: plain(func(m map[string]any) {
			p := obj(obj(blobsOf(m)[3])["patch"])
			s := p["sources"].([]any)
			s[0], s[1] = s[1], s[0]
		}), cmd: "import", code: fault.Integrity, msg: `layer sha256:[0-9a-f]{64}: `},
		{name: "patch/garbage-consistent", archive: edit(func(m map[string]any, e []tent) []tent {
			// a patch entry replaced by garbage with a sidecar updated to
			// pin the garbage: unpack accepts it, resolve must not
			junk := bytes.Repeat([]byte("not a patch "), 50)
			sum := fmt.Sprintf("%x", sha256Sum(junk))
			old := obj(entriesOf(m)[2])["name"].(string)
			obj(entriesOf(m)[2])["name"], obj(entriesOf(m)[2])["digest"], obj(entriesOf(m)[2])["size"] = "patches/sha256/"+sum, "sha256:"+sum, json.Number(fmt.Sprint(len(junk)))
			for _, b := range blobsOf(m) {
				if p, ok := obj(b)["patch"].(map[string]any); ok && p["entry"] == old {
					p["entry"] = "patches/sha256/" + sum
				}
			}
			e[3] = tent{tar.Header{Name: "patches/sha256/" + sum, Typeflag: tar.TypeReg, Mode: 0o644}, junk}
			return e
		}), cmd: "import", code: fault.Integrity, msg: `layer sha256:[0-9a-f]{64}: applying patch`},

		// --- hostile plans (parsed strictly by pack; plans are user input: usage)
		{name: "plan/deep", archive: func(*testing.T) []byte {
			return []byte(`{"kind":"diffah-plan","version":"1.0","name":` + deep + `}`)
		}, cmd: "pack", code: fault.Usage, msg: "nested deeper|max depth"},
		{name: "plan/huge", archive: func(*testing.T) []byte {
			return []byte(`{"kind":"diffah-plan","version":"1.0","name":"` + strings.Repeat("a", 65<<20) + `"}`)
		}, cmd: "pack", code: fault.Usage, msg: "larger than"},
		{name: "plan/wrong-type", archive: func(*testing.T) []byte {
			return []byte(`{"kind":"diffah-plan","version":"1.0","blobs":"many"}`)
		}, cmd: "pack", code: fault.Usage, msg: "cannot unmarshal|blobs"},
		{name: "plan/garbage", archive: func(*testing.T) []byte { return []byte("\x00\x01\x02 not json") }, cmd: "pack", code: fault.Usage, msg: "not valid JSON|plan"},
		{name: "plan/unknown-version", archive: func(*testing.T) []byte {
			return []byte(`{"kind":"diffah-plan","version":"7.0"}`)
		}, cmd: "pack", code: fault.Usage, msg: "unsupported plan version 7.0"},
		{name: "plan/tampered-raw", archive: func(t *testing.T) []byte {
			code, out, e := runIn(t, a.bin, t.TempDir(), nil, "plan", "--target", "oci:"+a.fx+"/v2", "--baseline", "oci:"+a.fx+"/v1")
			if code != 0 {
				t.Fatal(e)
			}
			m := sidecarMap(t, []byte(out))
			obj(m["target"])["raw"] = "e30="
			return jsonBytes(t, m)
		}, cmd: "pack", code: fault.Usage, msg: "target manifest bytes"},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "run")
			os.Mkdir(dir, 0o755)
			input := c.archive(t)
			var code int
			var stdout, stderr string
			want := []string{} // what may be in dir afterwards
			switch c.cmd {
			case "unpack":
				code, stdout, stderr = runIn(t, a.bin, dir, input, "unpack", "-o", "out")
			case "pack":
				code, stdout, stderr = runIn(t, a.bin, dir, input, "pack", "-o", "out")
			case "import", "resolve":
				base := "oci:" + a.fx + "/v1"
				if c.baseline != nil {
					base = c.baseline(t, dir)
				}
				if c.cmd == "import" {
					os.WriteFile(filepath.Join(dir, "in.dlt"), input, 0o644)
					want = []string{"in.dlt"}
					code, stdout, stderr = runIn(t, a.bin, dir, nil, "import", "--baseline", base, "-o", "oci:out:app", "in.dlt")
					break
				}
				// resolve: a layout from a good unpack, with the hostile
				// sidecar written over its own, must stay as it was.
				if code, _, e := runIn(t, a.bin, dir, a.good, "unpack", "-o", "lay"); code != 0 {
					t.Fatal(e)
				}
				sc := readTar(t, input)[0].data
				p := filepath.Join(dir, "lay", "diffah", "sidecar.json")
				os.Chmod(p, 0o644)
				if err := os.WriteFile(p, sc, 0o644); err != nil {
					t.Fatal(err)
				}
				before := treeSum(t, filepath.Join(dir, "lay"))
				want = []string{"lay"}
				code, stdout, stderr = runIn(t, a.bin, dir, nil, "resolve", "--baseline", base, "lay")
				if after := treeSum(t, filepath.Join(dir, "lay")); after != before {
					t.Errorf("failed resolve changed the layout")
				}
			default:
				t.Fatalf("unknown cmd %s", c.cmd)
			}
			if code != int(c.code) {
				t.Fatalf("exit %d, want %d (%s)\n%s", code, c.code, c.code, stderr)
			}
			if !regexp.MustCompile(`(?m)^diffah: `).MatchString(stderr) {
				t.Errorf("stderr lacks a \"diffah: \" error line:\n%s", stderr)
			}
			if !regexp.MustCompile(c.msg).MatchString(stderr) {
				t.Errorf("stderr does not match %q:\n%s", c.msg, stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Errorf("a panic:\n%s", stderr)
			}
			if c.cmd != "resolve" && stdout != "" {
				t.Errorf("wrote %d bytes to stdout", len(stdout))
			}
			if got := names(t, dir); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("left behind in the run directory: %v (want %v)", got, want)
			}
			for _, n := range names(t, root) {
				if n != "run" && n != "badbase" {
					t.Errorf("wrote %s beside the run directory", n)
				}
			}
			if _, err := os.Lstat(evil); err == nil {
				t.Errorf("wrote %s", evil)
			}
		})
	}
}

func mustInt(t *testing.T, v any) int64 {
	n, err := v.(json.Number).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
