package imgref

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
)

func blobOf(b []byte) srcBlob {
	return srcBlob{
		desc: v1.Descriptor{Digest: sha256Hash(b), Size: int64(len(b))},
		open: func() (io.ReadCloser, error) { return nopCloser(b), nil },
	}
}

// A blob already in place is kept only when it hashes right: same size
// and other bytes, a symlink (even to the right bytes elsewhere) are
// replaced; a directory is refused.
func TestWriteBlobFileVerifiesExisting(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	good := []byte("the right bytes of a blob")
	b := blobOf(good)
	dir := t.TempDir()
	p := filepath.Join(dir, b.desc.Digest.Hex)

	bad := append([]byte(nil), good...)
	bad[3] ^= 1
	os.WriteFile(p, bad, 0o644)
	if err := writeBlobFile(context.Background(), dir, b, log); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != string(good) {
		t.Fatalf("damaged blob of the right size kept: %q", got)
	}

	st0, _ := os.Stat(p)
	if err := writeBlobFile(context.Background(), dir, b, log); err != nil {
		t.Fatal(err)
	}
	if st1, _ := os.Stat(p); !os.SameFile(st0, st1) {
		t.Error("an intact blob was rewritten")
	}

	elsewhere := filepath.Join(t.TempDir(), "x")
	os.WriteFile(elsewhere, good, 0o644)
	os.Remove(p)
	os.Symlink(elsewhere, p)
	if err := writeBlobFile(context.Background(), dir, b, log); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Lstat(p); !st.Mode().IsRegular() {
		t.Fatalf("a symlink kept as a blob: %v", st.Mode())
	}

	os.Remove(p)
	os.Mkdir(p, 0o755)
	err := writeBlobFile(context.Background(), dir, b, log)
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), b.desc.Digest.String()) {
		t.Fatalf("directory at a blob path: %v", err)
	}
}

// A panic while producing a tar output is an internal error returned to
// the caller (not a crash), and leaves no temporary file.
func TestTarWriterPanic(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out.tar")
	err := writeTarFile(context.Background(), dest, []tarEntry{
		bytesEntry("a", []byte("x")),
		{name: "b", size: 1, open: func() (io.ReadCloser, error) { panic("boom") }},
	})
	var pe *fault.PanicError
	if !errors.As(err, &pe) || fault.KindOf(err, 0) != fault.Internal {
		t.Fatalf("got %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}

// An existing layout whose blobs/sha256 is a symlink is not written
// through: the blobs would land outside the layout.
func TestExistingLayoutSymlinkedBlobs(t *testing.T) {
	img := fixture(t, types.OCIManifestSchema1, "linux/amd64", "symlinked", "gzip").image(t)
	dir := t.TempDir()
	lay := filepath.Join(dir, "lay")
	ref := Ref{Transport: OCI, Path: lay, Tag: "a"}
	if err := Write(context.Background(), ref, img, Options{}); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(dir, "outside")
	os.Rename(filepath.Join(lay, "blobs", "sha256"), outside)
	os.Symlink(outside, filepath.Join(lay, "blobs", "sha256"))
	before, _ := os.ReadDir(outside)
	ref.Tag = "b"
	other := fixture(t, types.OCIManifestSchema1, "linux/amd64", "symlinked-other", "gzip").image(t)
	err := Write(context.Background(), ref, other, Options{})
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("got %v", err)
	}
	if after, _ := os.ReadDir(outside); len(after) != len(before) {
		t.Fatalf("wrote through the symlink: %d entries, had %d", len(after), len(before))
	}
}
