package imgref

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/diffah/diffah/fault"
)

// hostileLayout writes a one-layer OCI layout (tag v) and returns its
// directory and image.
func hostileLayout(t *testing.T) (string, *memImage) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "l")
	want := fixture(t, types.OCIManifestSchema1, "linux/amd64", "h", "gzip")
	mustWrite(t, "oci:"+dir+":v", want.image(t), Options{})
	return dir, want
}

func blobFile(dir string, h v1.Hash) string {
	return filepath.Join(dir, "blobs", "sha256", h.Hex)
}

// within runs f and fails the test if it does not return in time: the
// point of these tests is that nothing blocks.
func within[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still blocked after 20s", what)
		panic("unreachable")
	}
}

// readLayer opens the image and reads its first layer whole.
func readFirstLayer(ref string) error {
	img, err := Open(context.Background(), Ref{Transport: strings.SplitN(ref, ":", 2)[0], Path: strings.SplitN(ref, ":", 2)[1]}, Options{})
	if err != nil {
		return err
	}
	defer img.Close()
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	rc, err := ls[0].Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// TestSpecialFileBlobsRefused replaces a layer blob (and, separately, the
// manifest blob and index.json) with a FIFO, a socket and a character
// device: each is refused as an integrity error naming the file, without
// blocking (a FIFO nobody writes to would block open and read forever).
func TestSpecialFileBlobsRefused(t *testing.T) {
	makers := map[string]func(t *testing.T, p string){
		"fifo": func(t *testing.T, p string) {
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"socket": func(t *testing.T, p string) {
			// Socket paths are limited to ~108 bytes: bind in a short
			// directory, then move the socket into place.
			short, err := os.MkdirTemp("", "s")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(short) })
			l, err := net.Listen("unix", filepath.Join(short, "s"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			if err := os.Rename(filepath.Join(short, "s"), p); err != nil {
				t.Fatal(err)
			}
		},
		"chardev": func(t *testing.T, p string) {
			// The same device as /dev/zero: a read of it would never end.
			if err := unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
				t.Skipf("mknod: %v (needs root)", err)
			}
		},
	}
	for kind, mk := range makers {
		for _, which := range []string{"layer", "manifest", "index.json"} {
			t.Run(kind+"/"+which, func(t *testing.T) {
				dir, want := hostileLayout(t)
				p := filepath.Join(dir, "index.json")
				switch which {
				case "layer":
					p = blobFile(dir, want.m.Layers[0].Digest)
				case "manifest":
					p = blobFile(dir, sha256Hash(want.raw))
				}
				os.Remove(p)
				mk(t, p)
				err := within(t, "reading "+kind, func() error { return readFirstLayer("oci:" + dir) })
				if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "not a regular file") {
					t.Fatalf("want an integrity error saying it is not a regular file, got %v", err)
				}
				name := filepath.Base(p)
				if !strings.Contains(err.Error(), name) {
					t.Fatalf("error does not name %s: %v", name, err)
				}
			})
		}
	}
}

// TestSymlinkOutOfLayoutRefused points a layer blob (and the manifest
// blob) at a file outside the layout that has exactly the right digest
// and size, and at one that does not. Both are refused before any byte is
// read: the error never carries the outside file's digest.
func TestSymlinkOutOfLayoutRefused(t *testing.T) {
	for _, which := range []string{"layer", "manifest"} {
		for _, target := range []string{"same-bytes", "secret", "absolute"} {
			t.Run(which+"/"+target, func(t *testing.T) {
				dir, want := hostileLayout(t)
				h := want.m.Layers[0].Digest
				if which == "manifest" {
					h = sha256Hash(want.raw)
				}
				p := blobFile(dir, h)
				outside := filepath.Join(filepath.Dir(dir), "outside")
				content := []byte("a secret the layout must not reveal\n")
				if target == "same-bytes" {
					content, _ = os.ReadFile(p)
				}
				os.WriteFile(outside, content, 0o644)
				sum := sha256.Sum256(content)
				os.Remove(p)
				link := "../../../outside"
				if target == "absolute" {
					link = outside
				}
				if err := os.Symlink(link, p); err != nil {
					t.Fatal(err)
				}
				err := readFirstLayer("oci:" + dir)
				if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "outside") {
					t.Fatalf("want an integrity error about leaving the layout, got %v", err)
				}
				// (same-bytes has the blob's own name as its digest.)
				if target != "same-bytes" && strings.Contains(err.Error(), hex.EncodeToString(sum[:])) {
					t.Fatalf("the error leaks the outside file's digest: %v", err)
				}
			})
		}
	}
}

// TestSymlinkInsideLayoutFollowed: a link that stays inside is fine.
func TestSymlinkInsideLayoutFollowed(t *testing.T) {
	dir, want := hostileLayout(t)
	p := blobFile(dir, want.m.Layers[0].Digest)
	os.Rename(p, filepath.Join(dir, "blobs", "moved"))
	if err := os.Symlink("../moved", p); err != nil {
		t.Fatal(err)
	}
	assertSame(t, mustOpen(t, "oci:"+dir, Options{}), want)
}

// editIndex rewrites the one entry of index.json with f.
func editIndex(t *testing.T, dir string, f func(e map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "index.json")
	raw, _ := os.ReadFile(p)
	var idx map[string]any
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	f(idx["manifests"].([]any)[0].(map[string]any))
	os.WriteFile(p, mustJSON(t, idx), 0o644)
}

// TestIndexClaimsMismatch: whatever index.json claims about the manifest
// (media type, size, digest) is checked against the bytes, and a mismatch
// is an integrity error naming index.json or the blob, never a platform or
// usage error.
func TestIndexClaimsMismatch(t *testing.T) {
	cases := []struct {
		name string
		edit func(e map[string]any, want *memImage)
		says string
	}{
		{"index type for a manifest", func(e map[string]any, _ *memImage) { e["mediaType"] = string(types.OCIImageIndex) }, "index.json says"},
		{"docker list for a manifest", func(e map[string]any, _ *memImage) { e["mediaType"] = string(types.DockerManifestList) }, "index.json says"},
		{"docker manifest for an OCI one", func(e map[string]any, _ *memImage) { e["mediaType"] = string(types.DockerManifestSchema2) }, "index.json says"},
		{"short size", func(e map[string]any, want *memImage) { e["size"] = len(want.raw) - 1 }, "as index.json records"},
		{"long size", func(e map[string]any, want *memImage) { e["size"] = len(want.raw) + 1 }, "as index.json records"},
		{"negative size", func(e map[string]any, _ *memImage) { e["size"] = -1 }, "out of range"},
		{"huge size", func(e map[string]any, _ *memImage) { e["size"] = int64(1) << 62 }, "out of range"},
		{"other digest", func(e map[string]any, want *memImage) { e["digest"] = want.m.Layers[0].Digest.String() }, "as index.json records"},
		{"climbing digest", func(e map[string]any, _ *memImage) { e["digest"] = "sha256:../../x" }, "index.json"},
		{"climbing 64", func(e map[string]any, _ *memImage) {
			e["digest"] = "sha256:../../../../../../../../../../../../../../../../../../../../..x"
		}, "index.json"},
		{"other algorithm", func(e map[string]any, _ *memImage) { e["digest"] = "sha512:" + strings.Repeat("a", 128) }, "index.json"},
		{"no colon", func(e map[string]any, _ *memImage) { e["digest"] = "sha256" }, "index.json"},
		{"uppercase hex", func(e map[string]any, want *memImage) {
			e["digest"] = "sha256:" + strings.ToUpper(sha256Hash(want.raw).Hex)
		}, "index.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, want := hostileLayout(t)
			editIndex(t, dir, func(e map[string]any) { c.edit(e, want) })
			_, err := Open(context.Background(), mustParse(t, "oci:"+dir), Options{})
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("want an integrity error, got kind %d: %v", fault.KindOf(err, 0), err)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error does not say %q: %v", c.says, err)
			}
		})
	}
}

// TestManifestDescriptorsChecked: a manifest whose layer or config
// descriptor has a malformed digest or an impossible size is refused when
// the image is opened, before any of its blobs becomes a path.
func TestManifestDescriptorsChecked(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m *v1.Manifest)
	}{
		{"negative layer size", func(m *v1.Manifest) { m.Layers[0].Size = -5 }},
		{"negative config size", func(m *v1.Manifest) { m.Config.Size = -1 }},
		{"layer digest other algorithm", func(m *v1.Manifest) { m.Layers[0].Digest = v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("a", 128)} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := fixture(t, types.OCIManifestSchema1, "linux/amd64", "d", "gzip")
			c.edit(img.m)
			raw := mustJSON(t, img.m)
			_, err := newStoreImage("oci:x", raw, types.OCIManifestSchema1, nil)
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("want integrity error, got %v", err)
			}
		})
	}
}

// TestDirTransportSpecialFiles: dir: images get the same checks.
func TestDirTransportSpecialFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	want := fixture(t, types.OCIManifestSchema1, "linux/amd64", "dd", "gzip")
	mustWrite(t, "dir:"+dir, want.image(t), Options{})
	p := filepath.Join(dir, want.m.Layers[0].Digest.Hex)
	os.Remove(p)
	unix.Mkfifo(p, 0o644)
	err := within(t, "dir: fifo", func() error { return readFirstLayer("dir:" + dir) })
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("want integrity error naming a FIFO, got %v", err)
	}
	os.Remove(p)
	os.WriteFile(filepath.Join(filepath.Dir(dir), "secret"), []byte("x"), 0o644)
	os.Symlink("../secret", p)
	if err := readFirstLayer("dir:" + dir); fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("want integrity error about leaving the image, got %v", err)
	}
	os.Remove(filepath.Join(dir, "version"))
	unix.Mkfifo(filepath.Join(dir, "version"), 0o644)
	err = within(t, "dir: fifo version", func() error { return readFirstLayer("dir:" + dir) })
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("want integrity error for a FIFO version file, got %v", err)
	}
}

// TestArchiveThatIsAFIFO: an archive path naming a FIFO is refused at
// once, not waited on.
func TestArchiveThatIsAFIFO(t *testing.T) {
	for _, tr := range []string{"oci-archive", "docker-archive"} {
		p := filepath.Join(t.TempDir(), "a.tar")
		unix.Mkfifo(p, 0o644)
		err := within(t, tr, func() error { return readFirstLayer(tr + ":" + p) })
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("%s: want a refusal, got %v", tr, err)
		}
	}
}

// TestCheckBlob: presence of a blob without reading it.
func TestCheckBlob(t *testing.T) {
	dir, want := hostileLayout(t)
	l := want.m.Layers[0]
	img := mustOpen(t, "oci:"+dir, Options{})
	ctx := context.Background()
	if err := CheckBlob(ctx, img, l.Digest, l.Size); err != nil {
		t.Fatalf("present blob: %v", err)
	}
	if err := CheckBlob(ctx, img, want.m.Config.Digest, want.m.Config.Size); err != nil {
		t.Fatalf("present config: %v", err)
	}
	if err := CheckBlob(ctx, img, l.Digest, l.Size+1); fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("wrong size asked: %v", err)
	}
	if err := CheckBlob(ctx, img, sha256Hash([]byte("x")), 1); fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("blob not in the manifest: %v", err)
	}
	p := blobFile(dir, l.Digest)
	os.Truncate(p, l.Size-1)
	if err := CheckBlob(ctx, img, l.Digest, l.Size); fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("short blob file: %v", err)
	}
	os.Remove(p)
	if err := CheckBlob(ctx, img, l.Digest, l.Size); fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "not stored") {
		t.Fatalf("missing blob file: %v", err)
	}
	unix.Mkfifo(p, 0o644)
	if err := within(t, "CheckBlob fifo", func() error { return CheckBlob(ctx, img, l.Digest, l.Size) }); fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("fifo blob: %v", err)
	}
}
