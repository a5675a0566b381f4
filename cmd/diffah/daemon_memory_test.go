package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/internal/peakrss"
	"github.com/diffah/diffah/internal/testpodman"
)

// bigLayout writes an OCI layout holding one image with one uncompressed
// layer of size incompressible bytes, streamed to disk (not built in
// memory).
func bigLayout(t *testing.T, dir string, size int64) {
	t.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "layer.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	if err := tw.WriteHeader(&tar.Header{Name: "big.bin", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, rand.New(rand.NewSource(1)), size); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	st, _ := f.Stat()
	f.Close()
	layer := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp, filepath.Join(blobs, strings.TrimPrefix(layer, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) (string, int) {
		s := sha256.Sum256(b)
		d := hex.EncodeToString(s[:])
		if err := os.WriteFile(filepath.Join(blobs, d), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return "sha256:" + d, len(b)
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer}}})
	cd, cn := put(cfg)
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": st.Size()}}})
	md, mn := put(man)
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
		"annotations": map[string]string{"org.opencontainers.image.ref.name": "latest"}}}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// daemonPeakRSS runs the diffah binary and returns its peak resident set
// size in MiB (internal/peakrss).
func daemonPeakRSS(t *testing.T, env []string, bin string, args ...string) float64 {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	rss, err := peakrss.Run(cmd)
	if err != nil {
		t.Fatalf("diffah %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return float64(rss) / (1 << 20)
}

// TestDaemonMemoryBounded: loading a 256 MiB image into the engine and
// reading it back (a `docker save` stream) keep diffah's peak RSS far
// below the image size: the load streams and the save is spooled to disk.
func TestDaemonMemoryBounded(t *testing.T) {
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Skip("GNU time not installed: run scripts/deps.sh")
	}
	const size = 256 << 20
	const limitMiB = 100
	pm := testpodman.Start(t)
	bin := buildBinary(t)
	work := t.TempDir()
	bigLayout(t, filepath.Join(work, "big"), size)
	env := append(os.Environ(), "DOCKER_HOST="+pm.Host)
	delta := filepath.Join(work, "big.dlt")
	mustRun(t, bin, nil, "export", "--target", "oci:"+filepath.Join(work, "big"), "--no-baseline", "-o", delta)
	load := daemonPeakRSS(t, env, bin, "import", "-o", "docker-daemon:example.com/big:v1", delta)
	save := daemonPeakRSS(t, env, bin, "export", "--target", "docker-daemon:example.com/big:v1", "--no-baseline", "-o", filepath.Join(work, "again.dlt"))
	t.Logf("peak RSS for a %d MiB image: load into the engine %.0f MiB, read from the engine %.0f MiB", size>>20, load, save)
	for what, rss := range map[string]float64{"load": load, "save": save} {
		if rss > limitMiB {
			t.Errorf("%s: peak RSS %.0f MiB for a %d MiB image (limit %d MiB): something holds the image in memory", what, rss, size>>20, limitMiB)
		}
	}
	if _, err := pm.TryPodman("image", "exists", "example.com/big:v1"); err != nil {
		t.Fatalf("the image is not in the engine: %v", err)
	}
}
