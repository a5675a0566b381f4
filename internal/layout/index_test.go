package layout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

const goodIndex = `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ab12000000000000000000000000000000000000000000000000000000000000","size":500}]}`

func writeIndex(t testing.TB, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadIndexChecksEntries: index.json digests become paths and its
// sizes read lengths; both are checked before ReadIndex returns.
func TestReadIndexChecksEntries(t *testing.T) {
	dir := t.TempDir()
	writeIndex(t, dir, goodIndex)
	if idx, err := ReadIndex(dir); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("good index: %v", err)
	}
	for _, c := range []struct{ from, to, want string }{
		{"sha256:ab12000000000000000000000000000000000000000000000000000000000000", "sha256:../../outside", "malformed"},
		{"sha256:ab12000000000000000000000000000000000000000000000000000000000000", "outside", "only sha256"},
		{`"size":500`, `"size":9223372036854775807`, "larger than any real blob"},
		{`"size":500`, `"size":-1`, "negative size"},
	} {
		writeIndex(t, dir, strings.Replace(goodIndex, c.from, c.to, 1))
		_, err := ReadIndex(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("%s: err = %v, want an integrity error with %q", c.to, err, c.want)
		}
	}
}

// TestCheckSize: the range every size from input must be in.
func TestCheckSize(t *testing.T) {
	for _, n := range []int64{0, 1, MaxBlobSize} {
		if err := CheckSize(n, "x"); err != nil {
			t.Errorf("%d: %v", n, err)
		}
	}
	for _, n := range []int64{-1, MaxBlobSize + 1, 1<<63 - 1, -1 << 63} {
		if err := CheckSize(n, "x"); err == nil || fault.KindOf(err, 0) != fault.Integrity {
			t.Errorf("%d accepted (%v)", n, err)
		}
	}
}

// FuzzReadIndex: whatever index.json holds, ReadIndex returns entries
// whose digests are safe as paths and whose sizes are in range, or an
// error; never a panic.
func FuzzReadIndex(f *testing.F) {
	f.Add([]byte(goodIndex))
	f.Add([]byte(strings.Replace(goodIndex, "sha256:ab12", "sha256:../", 1)))
	f.Add([]byte(strings.Replace(goodIndex, `"size":500`, `"size":9223372036854775807`, 1)))
	f.Add([]byte(`{"manifests":[{"digest":"nocolon"}]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644)
		idx, err := ReadIndex(dir)
		if err != nil {
			return
		}
		for _, d := range idx.Manifests {
			if CheckDigest(d.Digest, "x") != nil || CheckSize(d.Size, "x") != nil {
				t.Fatalf("unchecked entry %+v", d)
			}
			if p := BlobPath(dir, d.Digest); filepath.Dir(filepath.Dir(p)) != filepath.Join(dir, "blobs") {
				t.Fatalf("path %s leaves the layout", p)
			}
		}
	})
}
