package imgref

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/testpodman"
)

func TestParseDaemon(t *testing.T) {
	id := "sha256:" + strings.Repeat("ab", 32)
	for _, s := range []string{
		"docker-daemon:app:v2", "docker-daemon:app", "docker-daemon:example.com/team/app:v2",
		"docker-daemon:localhost:5000/app:1", "docker-daemon:" + id, "docker-daemon:@" + id,
		"docker-daemon:example.com/app@" + id,
	} {
		r, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if r.Transport != DockerDaemon || r.String() != s {
			t.Fatalf("Parse(%q) = %+v (String %q)", s, r, r.String())
		}
		if r.Local() {
			t.Fatalf("%s: Local() is true", s)
		}
	}
	for _, tc := range []struct{ in, hint string }{
		{"docker-daemon:", "docker-daemon:example.com/app:v2"},
		{"docker-daemon:sha256:abc", "docker image inspect"},
		{"docker-daemon:@abc", "docker-daemon:NAME[:TAG]"},
		{"docker-daemon:Upper/Case", "docker-daemon:NAME[:TAG]"},
		{"docker-deamon:app:v1", "docker-daemon:app:v1"},
	} {
		_, err := Parse(tc.in)
		if err == nil || fault.KindOf(err, 0) != fault.Usage || !strings.Contains(fault.HintOf(err), tc.hint) {
			t.Errorf("Parse(%q): %v (hint %q), want usage error hinting %q", tc.in, err, fault.HintOf(err), tc.hint)
		}
	}
}

func TestLoadTag(t *testing.T) {
	for in, want := range map[string]string{"app": "app:latest", "app:v2": "app:v2", "localhost:5000/app": "localhost:5000/app:latest", "localhost:5000/a/b:c": "localhost:5000/a/b:c"} {
		got, err := mustParse(t, "docker-daemon:"+in).loadTag()
		if err != nil || got != want {
			t.Errorf("loadTag(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"sha256:" + strings.Repeat("0", 64), "app@sha256:" + strings.Repeat("0", 64)} {
		if _, err := mustParse(t, "docker-daemon:"+in).loadTag(); fault.KindOf(err, 0) != fault.Usage {
			t.Errorf("loadTag(%s): %v, want a usage error", in, err)
		}
	}
}

// TestDaemonNotRunning: no engine behind the socket is an environment
// error (exit 3) naming the socket and how to start one, for reading and
// for writing.
func TestDaemonNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nobody.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	_, err := Open(context.Background(), mustParse(t, "docker-daemon:app:v1"), Options{})
	checkUnreachable(t, err, sock)
	err = Write(context.Background(), mustParse(t, "docker-daemon:app:v2"), fixture(t, types.DockerManifestSchema2, "linux/amd64", "nr", "gzip").image(t), Options{})
	checkUnreachable(t, err, sock)
	checkUnreachable(t, CheckOutput(context.Background(), mustParse(t, "docker-daemon:app:v2")), sock)
	if err := CheckOutput(context.Background(), mustParse(t, "docker-daemon:sha256:"+strings.Repeat("0", 64))); fault.KindOf(err, 0) != fault.Usage {
		t.Errorf("CheckOutput of an image ID: %v, want a usage error", err)
	}
	if err := CheckOutput(context.Background(), mustParse(t, "oci:/nonexistent/dir")); err != nil {
		t.Errorf("CheckOutput of oci: %v", err)
	}

	// A socket that exists but nobody serves (a stale one).
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, err = Open(context.Background(), mustParse(t, "docker-daemon:app:v1"), Options{})
	checkUnreachable(t, err, sock)

	t.Setenv("DOCKER_HOST", "ssh://user@host")
	_, err = Open(context.Background(), mustParse(t, "docker-daemon:app:v1"), Options{})
	if fault.KindOf(err, 0) != fault.Usage || !strings.Contains(fault.HintOf(err), "ssh -L") {
		t.Errorf("ssh DOCKER_HOST: %v (hint %q), want a usage error hinting a forwarded socket", err, fault.HintOf(err))
	}
}

func checkUnreachable(t *testing.T, err error, sock string) {
	t.Helper()
	if fault.KindOf(err, 0) != fault.Env {
		t.Fatalf("err %v (kind %v), want an environment error", err, fault.KindOf(err, 0))
	}
	if !strings.Contains(err.Error(), sock) || !strings.Contains(fault.HintOf(err), sock) || !strings.Contains(fault.HintOf(err), "podman system service") {
		t.Fatalf("error %q / hint %q does not name the socket %s and how to start an engine", err, fault.HintOf(err), sock)
	}
}

// TestDaemonErrorReplies: what an engine answers besides success — 404 is
// "not found" (exit 3, hint to list images), other statuses carry the
// engine's message, and an error in a load reply is reported. A small
// handler stands in for the engine: a real one cannot be made to fail a
// load on purpose.
func TestDaemonErrorReplies(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "e.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/missing:v1/json"):
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"No such image: missing:v1"}`))
		case strings.HasSuffix(r.URL.Path, "/broken:v1/json"):
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"message":"storage is on fire"}`))
		case r.URL.Path == "/images/load":
			io.Copy(io.Discard, r.Body)
			w.Write([]byte(`{"stream":"Loading layer"}` + "\n" + `{"errorDetail":{"message":"no space left on device"},"error":"no space left on device"}`))
		default:
			w.WriteHeader(http.StatusTeapot)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("DOCKER_HOST", "unix://"+sock)

	_, err = Open(context.Background(), mustParse(t, "docker-daemon:missing:v1"), Options{})
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "No such image") || !strings.Contains(fault.HintOf(err), "docker image ls") {
		t.Errorf("missing image: %v (hint %q)", err, fault.HintOf(err))
	}
	_, err = Open(context.Background(), mustParse(t, "docker-daemon:broken:v1"), Options{})
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "storage is on fire") {
		t.Errorf("engine error: %v", err)
	}
	err = Write(context.Background(), mustParse(t, "docker-daemon:app:v2"), fixture(t, types.DockerManifestSchema2, "linux/amd64", "er", "gzip").image(t), Options{})
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("load error: %v", err)
	}
}

func TestReadLoadStream(t *testing.T) {
	msgs, err := readLoadStream(strings.NewReader(`{"stream":"Loaded image: app:v2\n"}` + "\n"))
	if err != nil || len(msgs) != 1 || msgs[0] != "Loaded image: app:v2" {
		t.Fatalf("%q, %v", msgs, err)
	}
	if _, err := readLoadStream(strings.NewReader(`{"error":"bad"}`)); err == nil || err.Error() != "bad" {
		t.Fatalf("error reply: %v", err)
	}
	if _, err := readLoadStream(strings.NewReader(`{"stream":`)); err == nil {
		t.Fatal("truncated reply accepted")
	}
}

func FuzzReadLoadStream(f *testing.F) {
	for _, s := range []string{`{"stream":"Loaded image: a:b"}`, `{"errorDetail":{"message":"x"},"error":"x"}`, `{"status":"ok"}{"stream":"y"}`, ``, `[`, `{"stream":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, _ := readLoadStream(bytes.NewReader(b))
		if len(msgs) > maxLoadMessages {
			t.Fatalf("%d messages kept", len(msgs))
		}
	})
}

// TestDaemonRoundTrip loads an image into a real Podman service, reads it
// back by name and by ID, and checks what the engine keeps: the config
// byte for byte (its digest is the image ID) and the uncompressed layers
// (layer digests = diffIDs).
func TestDaemonRoundTrip(t *testing.T) {
	pm := testpodman.Start(t)
	t.Setenv("DOCKER_HOST", pm.Host)
	if err := CheckOutput(context.Background(), mustParse(t, "docker-daemon:example.com/app:v1")); err != nil {
		t.Fatalf("CheckOutput with the engine running: %v", err)
	}
	want := fixture(t, types.DockerManifestSchema2, "linux/amd64", "daemon", "gzip", "zstd", "tar")
	id, err := LoadDaemon(context.Background(), mustParse(t, "docker-daemon:example.com/app:v1"), want.image(t), Options{})
	if err != nil {
		t.Fatalf("LoadDaemon: %v", err)
	}
	if id != want.m.Config.Digest.String() {
		t.Fatalf("image ID %s, want the config digest %s", id, want.m.Config.Digest)
	}
	for _, ref := range []string{"docker-daemon:example.com/app:v1", "docker-daemon:" + id, "docker-daemon:@" + id} {
		img := mustOpen(t, ref, Options{})
		cfg, err := img.RawConfigFile()
		if err != nil || !bytes.Equal(cfg, want.blobs[want.m.Config.Digest]) {
			t.Fatalf("%s: config differs (%v)", ref, err)
		}
		if img.Platform != "linux/amd64" {
			t.Errorf("%s: platform %q", ref, img.Platform)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		diffIDs := want.diffIDs(t)
		if len(layers) != len(diffIDs) {
			t.Fatalf("%s: %d layers, want %d", ref, len(layers), len(diffIDs))
		}
		for i, l := range layers {
			d, _ := l.Digest()
			if d != diffIDs[i] {
				t.Errorf("%s: layer %d is %s, want the uncompressed %s", ref, i, d, diffIDs[i])
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("%s: layer %d: %v", ref, i, err)
			}
			rc.Close()
		}
	}
	// And out again to a file: the engine's image survives as a
	// docker-archive of uncompressed layers.
	out := "docker-archive:" + filepath.Join(t.TempDir(), "out.tar") + ":example.com/app:v1"
	mustWrite(t, out, mustOpen(t, "docker-daemon:example.com/app:v1", Options{}), Options{})
	if n, _ := mustOpen(t, out, Options{}).ConfigName(); n != want.m.Config.Digest {
		t.Errorf("re-saved config %s", n)
	}
	// Podman itself agrees on the ID.
	if got := strings.TrimSpace(string(pm.Podman(t, "image", "inspect", "--format", "{{.Id}}", "example.com/app:v1"))); "sha256:"+got != id && got != id {
		t.Errorf("podman image inspect says %s, want %s", got, id)
	}

	_, err = Open(context.Background(), mustParse(t, "docker-daemon:example.com/nope:v1"), Options{})
	if fault.KindOf(err, 0) != fault.Env || !strings.Contains(fault.HintOf(err), "docker image ls") {
		t.Errorf("absent image: %v (hint %q)", err, fault.HintOf(err))
	}
	if err := Write(context.Background(), mustParse(t, "docker-daemon:"+id), want.image(t), Options{}); fault.KindOf(err, 0) != fault.Usage {
		t.Errorf("writing to an ID: %v, want a usage error", err)
	}
}

// TestDaemonLoadVerifies: a blob that does not match its digest stops the
// load with an integrity error before the engine tags anything.
func TestDaemonLoadVerifies(t *testing.T) {
	pm := testpodman.Start(t)
	t.Setenv("DOCKER_HOST", pm.Host)
	bad := fixture(t, types.DockerManifestSchema2, "linux/amd64", "corrupt", "gzip", "gzip")
	l := bad.m.Layers[1].Digest
	b := append([]byte{}, bad.blobs[l]...)
	b[len(b)/2] ^= 0xff
	bad.blobs[l] = b
	_, err := LoadDaemon(context.Background(), mustParse(t, "docker-daemon:example.com/bad:v1"), bad.image(t), Options{})
	if fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("corrupt blob: %v (kind %v), want integrity", err, fault.KindOf(err, 0))
	}
	if _, err := pm.TryPodman("image", "exists", "example.com/bad:v1"); err == nil {
		t.Fatal("the engine holds the image after a failed load")
	}
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("not a fault.Error: %v", err)
	}
}

// TestDaemonNamedByManifest: an engine whose image ID is not the config
// digest (Docker's containerd image store names images by manifest) is
// read when the saved layers are the ones it describes, and refused
// (exit 4) when they are not. A small handler stands in for such an
// engine; Podman names images by config.
func TestDaemonNamedByManifest(t *testing.T) {
	want := fixture(t, types.DockerManifestSchema2, "linux/amd64", "ctrd", "gzip", "tar")
	archive := filepath.Join(t.TempDir(), "saved.tar")
	mustWrite(t, "docker-archive:"+archive+":example.com/app:v1", want.image(t), Options{})
	saved, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	id := "sha256:" + strings.Repeat("0", 64)
	var layers []string
	for _, d := range want.diffIDs(t) {
		layers = append(layers, d.String())
	}
	for _, tc := range []struct {
		name   string
		layers []string
		ok     bool
	}{{"same layers", layers, true}, {"other layers", []string{"sha256:" + strings.Repeat("1", 64)}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "e.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(map[string]any{"Id": id, "RootFS": map[string]any{"Layers": tc.layers}})
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/images/example.com/app:v1/json":
					w.Write(body)
				case "/images/" + id + "/get":
					w.Write(saved)
				default:
					w.WriteHeader(http.StatusNotFound)
				}
			})}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			t.Setenv("DOCKER_HOST", "unix://"+sock)
			img, err := Open(context.Background(), mustParse(t, "docker-daemon:example.com/app:v1"), Options{})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				defer img.Close()
				if n, _ := img.ConfigName(); n != want.m.Config.Digest {
					t.Fatalf("config %s", n)
				}
				return
			}
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("other layers: %v, want an integrity error", err)
			}
		})
	}
}
