package artifact

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/testregistry"
)

// archiveStream generates an archive-like tar stream of about size bytes
// (diffah.json first, then a pseudo-random payload), never held whole.
func archiveStream(t testing.TB, size int64, seed int64) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		meta := []byte(`{"version":1}`)
		err := tw.WriteHeader(&tar.Header{Name: "diffah.json", Mode: 0o644, Size: int64(len(meta))})
		if err == nil {
			_, err = tw.Write(meta)
		}
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: "blobs/payload", Mode: 0o644, Size: size})
		}
		if err == nil {
			_, err = io.Copy(tw, io.LimitReader(rand.New(rand.NewSource(seed)), size))
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func dockerRef(t testing.TB, s string) imgref.Ref {
	t.Helper()
	r, err := imgref.Parse("docker://" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fastOpts keep failing tests short: one retry, 10 ms apart.
var fastOpts = imgref.Options{RetryTimes: 1, RetryDelay: 10 * time.Millisecond}

// registryProc finds the server process testregistry started for host
// (its config names the address) and the storage root from that config.
func registryProc(t *testing.T, host string) (int, string) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) != 3 || args[0] != testregistry.Binary || args[1] != "serve" {
			continue
		}
		cfg, err := os.ReadFile(args[2])
		if err != nil || !strings.Contains(string(cfg), "addr: "+host+"\n") {
			continue
		}
		for _, line := range strings.Split(string(cfg), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "rootdirectory: "); ok {
				return pid, v
			}
		}
	}
	t.Fatalf("no registry process serving %s", host)
	return 0, ""
}

func TestPushPullRoundTrip(t *testing.T) {
	host := testregistry.Start(t)
	ref := dockerRef(t, host+"/deltas:app-1-2")
	ctx := context.Background()

	sent := sha256.New()
	p, err := Push(ctx, ref, io.TeeReader(archiveStream(t, 20<<20, 1), sent), fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.NewDigest(digest.SHA256, sent); p.Blob != want || p.Size < 20<<20 {
		t.Fatalf("pushed %s (%d bytes), sent %s", p.Blob, p.Size, want)
	}

	rc, size, err := Pull(ctx, ref, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n != p.Size || size != p.Size || digest.NewDigest(digest.SHA256, got) != p.Blob {
		t.Fatalf("pulled %d bytes (declared %d) %x, pushed %d %s", n, size, got.Sum(nil), p.Size, p.Blob)
	}

	// The manifest, as the registry serves it.
	nref, _ := name.ParseReference(host+"/deltas:app-1-2", name.Insecure)
	desc, err := remote.Get(nref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != p.Manifest.String() {
		t.Errorf("manifest digest %s, Push said %s", desc.Digest, p.Manifest)
	}
	checkManifestJSON(t, desc.Manifest, LayerMediaType, p)

	// skopeo reads the artifact manifest as is.
	if _, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+host+"/deltas:app-1-2").Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v", err)
		}
		checkManifestJSON(t, out, LayerMediaType, p)
	}
}

func checkManifestJSON(t *testing.T, raw []byte, layerMT string, p Pushed) {
	t.Helper()
	var m struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		ArtifactType  string `json:"artifactType"`
		Config        struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"config"`
		Layers []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Size        int64             `json:"size"`
			Annotations map[string]string `json:"annotations"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest %s: %v", raw, err)
	}
	if m.SchemaVersion != 2 || m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.ArtifactType != ArtifactType {
		t.Errorf("manifest header: %s", raw)
	}
	if m.Config.MediaType != "application/vnd.oci.empty.v1+json" || m.Config.Size != 2 ||
		m.Config.Digest != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" {
		t.Errorf("config: %+v", m.Config)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("layers: %s", raw)
	}
	l := m.Layers[0]
	if l.MediaType != layerMT || l.Digest != p.Blob.String() || l.Size != p.Size || l.Annotations["org.opencontainers.image.title"] != "delta.dlt" {
		t.Errorf("layer %+v, want %s %s %d", l, layerMT, p.Blob, p.Size)
	}
}

func TestPushMediaType(t *testing.T) {
	host := testregistry.Start(t)
	var zs bytes.Buffer
	enc, _ := zstd.NewWriter(&zs)
	io.Copy(enc, archiveStream(t, 64<<10, 2))
	enc.Close()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"zstd", zs.Bytes(), LayerMediaTypeZstd},
		{"tar", []byte("diffah.json\x00 plain tar"), LayerMediaType},
		{"short", []byte{0x28, 0xb5}, LayerMediaType},
		{"empty", nil, LayerMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := dockerRef(t, host+"/deltas:"+tc.name)
			p, err := Push(context.Background(), ref, bytes.NewReader(tc.data), fastOpts)
			if err != nil {
				t.Fatal(err)
			}
			nref, _ := name.ParseReference(host+"/deltas:"+tc.name, name.Insecure)
			desc, err := remote.Get(nref)
			if err != nil {
				t.Fatal(err)
			}
			checkManifestJSON(t, desc.Manifest, tc.want, p)
			rc, _, err := Pull(context.Background(), ref, fastOpts)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("pulled %d bytes (%v), pushed %d", len(got), err, len(tc.data))
			}
		})
	}
}

func TestPullRefusesNonArtifacts(t *testing.T) {
	host := testregistry.Start(t)
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	nref, _ := name.ParseReference(host+"/app:1", name.Insecure)
	if err := remote.Write(nref, img); err != nil {
		t.Fatal(err)
	}
	// An artifact of someone else's type, with the empty config blob.
	if _, err := Push(context.Background(), dockerRef(t, host+"/other:x"), strings.NewReader("x"), fastOpts); err != nil {
		t.Fatal(err)
	}
	foreign := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
	oref, _ := name.ParseReference(host+"/other:sbom", name.Insecure)
	if err := remote.Put(oref, rawManifest{foreign, "application/vnd.oci.image.manifest.v1+json"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  string
		want []string
	}{
		{host + "/app:1", []string{"not a diffah delta artifact", "container image", "2 layer(s)", host + "/app:1"}},
		{host + "/other:sbom", []string{"not a diffah delta artifact", `"application/vnd.example.sbom"`, "0 layer(s)"}},
	}
	for _, tc := range tests {
		_, _, err := Pull(context.Background(), dockerRef(t, tc.ref), fastOpts)
		if fault.KindOf(err, 0) != fault.Usage {
			t.Fatalf("%s: %v (kind %v), want a Usage error", tc.ref, err, fault.KindOf(err, 0))
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.ref, err, w)
			}
		}
		if fault.HintOf(err) == "" {
			t.Errorf("%s: no hint", tc.ref)
		}
	}
}

func TestPullErrors(t *testing.T) {
	host := testregistry.Start(t)
	_, _, err := Pull(context.Background(), dockerRef(t, host+"/nothing:here"), fastOpts)
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "nothing:here") {
		t.Errorf("missing artifact: %v", err)
	}
	// Nobody listens on a port just released.
	_, _, err = Pull(context.Background(), dockerRef(t, "127.0.0.1:1/deltas:x"), fastOpts)
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "127.0.0.1:1/deltas:x") {
		t.Errorf("no registry: %v", err)
	}
}

func TestPullCorruptBlob(t *testing.T) {
	host := testregistry.Start(t)
	_, storage := registryProc(t, host)
	ref := dockerRef(t, host+"/deltas:bad")
	p, err := Push(context.Background(), ref, archiveStream(t, 1<<20, 3), fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(storage, "docker/registry/v2/blobs/sha256", p.Blob.Encoded()[:2], p.Blob.Encoded(), "data")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, _, err := Pull(context.Background(), ref, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), p.Blob.String()) {
		t.Fatalf("corrupt blob: %v (kind %v)", err, fault.KindOf(err, 0))
	}
	if n != p.Size {
		t.Errorf("error after %d bytes, want at the end (%d)", n, p.Size)
	}
}

// killAfter reads through r and kills the registry process once it has
// passed on limit bytes: the server going away in the middle of an upload.
type killAfter struct {
	r     io.Reader
	n     int64
	limit int64
	pid   int
}

func (k *killAfter) Read(p []byte) (int, error) {
	if k.n >= k.limit && k.pid != 0 {
		syscall.Kill(k.pid, syscall.SIGKILL)
		k.pid = 0
	}
	n, err := k.r.Read(p)
	k.n += int64(n)
	return n, err
}

func TestPushRegistryStops(t *testing.T) {
	host := testregistry.Start(t)
	pid, _ := registryProc(t, host)
	ref := dockerRef(t, host+"/deltas:cut")
	src := &killAfter{r: archiveStream(t, 20<<20, 4), limit: 5 << 20, pid: pid}
	_, err := Push(context.Background(), ref, src, fastOpts)
	if err == nil {
		t.Fatal("push to a registry killed mid-upload succeeded")
	}
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), ref.String()) {
		t.Fatalf("got %v (kind %v), want an Env error naming %s", err, fault.KindOf(err, 0), ref)
	}
	if src.pid != 0 {
		t.Fatalf("registry was never stopped (%d bytes read)", src.n)
	}
}

// failAfter fails with err once limit bytes have been read.
type failAfter struct {
	r     io.Reader
	n     int64
	limit int64
	err   error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n >= f.limit {
		return 0, f.err
	}
	n, err := f.r.Read(p[:min(int64(len(p)), f.limit-f.n)])
	f.n += int64(n)
	return n, err
}

func TestPushSourceFails(t *testing.T) {
	host := testregistry.Start(t)
	ref := dockerRef(t, host+"/deltas:src")
	cause := fault.Errorf(fault.Integrity, "baseline layer 3 is corrupt")
	_, err := Push(context.Background(), ref, &failAfter{r: archiveStream(t, 4<<20, 5), limit: 1 << 20, err: cause}, fastOpts)
	if !errors.Is(err, cause) || fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), ref.String()) {
		t.Fatalf("got %v (kind %v), want the source's error", err, fault.KindOf(err, 0))
	}
	// Nothing was tagged.
	if _, _, err := Pull(context.Background(), ref, fastOpts); fault.KindOf(err, 0) != fault.Env {
		t.Fatalf("pull after a failed push: %v", err)
	}
}

func TestParseManifest(t *testing.T) {
	good := func(mt string) string {
		return fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":%q,"digest":"sha256:%064x","size":10}]}`, ArtifactType, mt, 1)
	}
	tests := []struct {
		name string
		raw  string
		kind fault.Kind
	}{
		{"tar", good(LayerMediaType), 0},
		{"zstd", good(LayerMediaTypeZstd), 0},
		{"other layer type", good("application/vnd.oci.image.layer.v1.tar+gzip"), fault.Usage},
		{"not json", "<html>", fault.Usage},
		{"index", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, fault.Usage},
		{"bad digest", strings.Replace(good(LayerMediaType), "sha256:0000", "md5:0000", 1), fault.Integrity},
		{"negative size", strings.Replace(good(LayerMediaType), `"size":10`, `"size":-1`, 1), fault.Integrity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseManifest([]byte(tc.raw), "application/vnd.oci.image.manifest.v1+json", "docker://r/x:y")
			if got := fault.KindOf(err, 0); got != tc.kind {
				t.Fatalf("kind %v (%v), want %v", got, err, tc.kind)
			}
			if err == nil && d.Size != 10 {
				t.Errorf("descriptor %+v", d)
			}
			if err != nil && !strings.Contains(err.Error(), "docker://r/x:y") {
				t.Errorf("%v does not name the ref", err)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"artifactType":"application/vnd.diffah.delta.v1","layers":[{"mediaType":"application/vnd.diffah.delta.v1.tar","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}`))
	f.Add([]byte(`{"layers":[{},{}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := parseManifest(raw, "m", "w")
		if err == nil {
			if d.Size < 0 || d.Size > MaxArchive || (d.MediaType != LayerMediaType && d.MediaType != LayerMediaTypeZstd) {
				t.Fatalf("accepted %+v", d)
			}
		} else if k := fault.KindOf(err, 0); k != fault.Usage && k != fault.Integrity {
			t.Fatalf("error kind %v: %v", k, err)
		}
	})
}

func BenchmarkPushPull(b *testing.B) {
	host := testregistry.Start(b)
	const size = 64 << 20
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		ref := dockerRef(b, fmt.Sprintf("%s/bench:%d", host, i))
		if _, err := Push(context.Background(), ref, archiveStream(b, size, int64(i)), imgref.Options{}); err != nil {
			b.Fatal(err)
		}
		rc, _, err := Pull(context.Background(), ref, imgref.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// flakyProxy fronts the registry and answers the first request of the
// given method on a blob upload URL with 503.
func flakyProxy(t *testing.T, host, method string) string {
	target, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(target)
	var failed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == method && strings.Contains(r.URL.Path, "/blobs/uploads/") && failed.CompareAndSwap(false, true) {
			io.Copy(io.Discard, r.Body)
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// A transient failure before any byte is taken from the stream is
// retried; once bytes have gone, the stream cannot be replayed and the
// push fails rather than upload a truncated blob.
func TestPushRetry(t *testing.T) {
	host := testregistry.Start(t)
	tests := []struct {
		method string
		ok     bool
		seed   int64 // distinct content: a blob already there is not re-sent
	}{
		{http.MethodPost, true, 6},
		{http.MethodPatch, false, 7},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			ref := dockerRef(t, flakyProxy(t, host, tc.method)+"/deltas:flaky")
			opts := imgref.Options{RetryTimes: 2, RetryDelay: 10 * time.Millisecond}
			p, err := Push(context.Background(), ref, archiveStream(t, 1<<20, tc.seed), opts)
			if !tc.ok {
				if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "cannot be sent again") || !strings.Contains(err.Error(), ref.String()) {
					t.Fatalf("got %v (kind %v)", err, fault.KindOf(err, 0))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rc, _, err := Pull(context.Background(), ref, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			h := sha256.New()
			if _, err := io.Copy(h, rc); err != nil || digest.NewDigest(digest.SHA256, h) != p.Blob {
				t.Fatalf("pulled %x (%v), pushed %s", h.Sum(nil), err, p.Blob)
			}
		})
	}
}
