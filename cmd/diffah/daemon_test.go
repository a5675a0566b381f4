package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/internal/testpodman"
)

// fixtureImage opens testdata/images/NAME (the registry form of an image).
func fixtureImage(t *testing.T, fx, name string) *imgref.Image {
	t.Helper()
	img, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: filepath.Join(fx, name)}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// loadIntoPodman puts fixture NAME into the engine as `docker load` users
// do: written as a docker-archive, loaded with `podman load`.
func loadIntoPodman(t *testing.T, pm *testpodman.Service, fx, name, tag string) {
	t.Helper()
	archive := filepath.Join(t.TempDir(), name+".tar")
	pushFixture(t, fx, name, "docker-archive:"+archive+":"+tag)
	pm.Podman(t, "load", "-q", "-i", archive)
}

// savedDiffIDs saves an image with `podman save` (a docker-archive of
// uncompressed layers) and returns its config digest and the digests of
// its layers as saved: diffah reads the archive, hashing every layer.
func savedLayers(t *testing.T, pm *testpodman.Service, tag string) (config v1.Hash, layers []v1.Hash, archive string) {
	t.Helper()
	archive = filepath.Join(t.TempDir(), "saved.tar")
	pm.Podman(t, "save", "-q", "--format", "docker-archive", "-o", archive, tag)
	r, err := imgref.Parse("docker-archive:" + archive)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imgref.Open(context.Background(), r, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	config, _ = img.ConfigName()
	m, _ := img.Manifest()
	for _, l := range m.Layers {
		layers = append(layers, l.Digest)
	}
	return config, layers, archive
}

func diffIDsOf(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}

// TestDaemonImport: the site's baseline is the image it loaded into its
// engine; the delta (planned against the registry form) imports against
// docker-daemon: v1 into docker-daemon: v2. The engine then holds v2: its
// image ID is v2's config digest, and `podman save` gives v2's diffIDs.
func TestDaemonImport(t *testing.T) {
	fx := fixtures(t)
	pm := testpodman.Start(t)
	t.Setenv("DOCKER_HOST", pm.Host)
	for _, pair := range [][2]string{{"docker-v2", "docker-v1"}, {"v2", "v1"}} {
		t.Run(pair[0], func(t *testing.T) {
			tag := "example.com/" + pair[0]
			v1Tag, v2Tag := tag+":v1", tag+":v2"
			if pair[1] == "v1" {
				// OCI media types into a docker-archive need conversion:
				// load the Docker twin, whose config is the same image.
				loadIntoPodman(t, pm, fx, "docker-v1", v1Tag)
			} else {
				loadIntoPodman(t, pm, fx, pair[1], v1Tag)
			}
			delta := filepath.Join(t.TempDir(), "d.dlt")
			if code, e := diffahRun(t, nil, "export", "--target", "oci:"+filepath.Join(fx, pair[0]), "--baseline", "oci:"+filepath.Join(fx, pair[1]), "-o", delta); code != 0 {
				t.Fatal(e)
			}
			code, stderr := diffahRun(t, nil, "import", "--baseline", "docker-daemon:"+v1Tag, "-o", "docker-daemon:"+v2Tag, delta)
			if code != 0 {
				t.Fatalf("import: exit %d\n%s", code, stderr)
			}
			want := fixtureImage(t, fx, pair[0])
			cfg, _ := want.ConfigName()
			if !strings.Contains(stderr, "image ID "+cfg.String()) {
				t.Fatalf("import does not report the image ID %s:\n%s", cfg, stderr)
			}
			if id := strings.TrimSpace(string(pm.Podman(t, "image", "inspect", "--format", "{{.Id}}", v2Tag))); id != cfg.Hex {
				t.Fatalf("podman holds %s as %s, want %s", v2Tag, id, cfg.Hex)
			}
			savedCfg, layers, _ := savedLayers(t, pm, v2Tag)
			wantIDs := diffIDsOf(t, want)
			if savedCfg != cfg || len(layers) != len(wantIDs) {
				t.Fatalf("podman save: config %s and %d layers, want %s and %d", savedCfg, len(layers), cfg, len(wantIDs))
			}
			for i := range layers {
				if layers[i] != wantIDs[i] {
					t.Errorf("saved layer %d is %s, v2's diffID is %s", i, layers[i], wantIDs[i])
				}
			}
			// And the engine's v1 rebuilds the registry form byte for
			// byte into a file transport too.
			out := filepath.Join(t.TempDir(), "out")
			if code, e := diffahRun(t, nil, "import", "--baseline", "docker-daemon:"+v1Tag, "-o", "oci:"+out+":v2", delta); code != 0 {
				t.Fatal(e)
			}
			if got, w := indexDigest(t, out), indexDigest(t, filepath.Join(fx, pair[0])); got != w {
				t.Fatalf("rebuilt %s, registry form is %s", got, w)
			}
		})
	}
}

// TestDockerSaveBaseline: a baseline that is a `docker save` archive of
// the registry image (uncompressed layers, none of the registry's blobs)
// serves a delta planned against the registry form: reused and patch
// source layers are matched by diffID, and the rebuilt image is the
// registry form byte for byte (same manifest digest).
func TestDockerSaveBaseline(t *testing.T) {
	fx := fixtures(t)
	pm := testpodman.Start(t)
	t.Setenv("DOCKER_HOST", pm.Host)
	loadIntoPodman(t, pm, fx, "docker-v1", "example.com/app:v1")
	_, savedLayerDigests, saved := savedLayers(t, pm, "example.com/app:v1")
	reg := fixtureImage(t, fx, "docker-v1")
	m, _ := reg.Manifest()
	for i, l := range m.Layers {
		if l.Digest == savedLayerDigests[i] {
			t.Fatalf("saved layer %d has the registry blob's digest: nothing is tested", i)
		}
	}
	for _, target := range []string{"docker-v2"} {
		delta := filepath.Join(t.TempDir(), "d.dlt")
		if code, e := diffahRun(t, nil, "export", "--target", "oci:"+filepath.Join(fx, target), "--baseline", "oci:"+filepath.Join(fx, "docker-v1"), "-o", delta); code != 0 {
			t.Fatal(e)
		}
		out := filepath.Join(t.TempDir(), "out")
		if code, e := diffahRun(t, nil, "import", "--baseline", "docker-archive:"+saved, "-o", "oci:"+out+":v2", delta); code != 0 {
			t.Fatalf("import against the docker save archive: %s", e)
		}
		if got, want := indexDigest(t, out), indexDigest(t, filepath.Join(fx, target)); got != want {
			t.Fatalf("rebuilt %s, registry form is %s", got, want)
		}
		// Every blob of the registry form is there, byte for byte.
		wantImg := fixtureImage(t, fx, target)
		wm, _ := wantImg.Manifest()
		for _, l := range append(wm.Layers, wm.Config) {
			a, err := os.ReadFile(filepath.Join(out, "blobs", "sha256", l.Digest.Hex))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(filepath.Join(fx, target, "blobs", "sha256", l.Digest.Hex))
			if string(a) != string(b) {
				t.Fatalf("blob %s differs from the registry form", l.Digest)
			}
		}
	}
}

// TestDaemonErrors: no engine is exit 3 naming the socket; a baseline in
// the engine that is not the one planned against fails preflight (exit 4)
// naming every layer and why, and loads nothing.
func TestDaemonErrors(t *testing.T) {
	fx := fixtures(t)
	delta := filepath.Join(t.TempDir(), "d.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+filepath.Join(fx, "docker-v2"), "--baseline", "oci:"+filepath.Join(fx, "docker-v1"), "-o", delta); code != 0 {
		t.Fatal(e)
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	for _, args := range [][]string{
		{"import", "--baseline", "docker-daemon:example.com/app:v1", "-o", "oci:" + filepath.Join(t.TempDir(), "o"), delta},
		{"import", "--baseline", "oci:" + filepath.Join(fx, "docker-v1"), "-o", "docker-daemon:example.com/app:v2", delta},
		{"plan", "--target", "docker-daemon:example.com/app:v2", "--no-baseline"},
		// Outputs are checked first: the delta is not even opened.
		{"import", "--baseline", "oci:" + filepath.Join(fx, "docker-v1"), "-o", "docker-daemon:example.com/app:v2", filepath.Join(t.TempDir(), "missing.dlt")},
	} {
		code, stderr := diffahRun(t, nil, args...)
		if code != int(fault.Env) || !strings.Contains(stderr, sock) || !strings.Contains(stderr, "hint:") {
			t.Errorf("%s with no engine: exit %d, want 3 with a hint naming %s:\n%s", args[0], code, sock, stderr)
		}
	}

	if code, stderr := diffahRun(t, nil, "import", "-o", "docker-daemon:sha256:"+strings.Repeat("0", 64), filepath.Join(t.TempDir(), "missing.dlt")); code != int(fault.Usage) || !strings.Contains(stderr, "NAME[:TAG]") {
		t.Errorf("-o to an image ID: exit %d, want 2 before anything else:\n%s", code, stderr)
	}

	pm := testpodman.Start(t)
	t.Setenv("DOCKER_HOST", pm.Host)
	pushFixture(t, fx, "unrelated", "docker-daemon:example.com/other:v1") // OCI types: the engine loads it as is
	code, stderr := diffahRun(t, nil, "import", "--baseline", "docker-daemon:example.com/other:v1", "-o", "docker-daemon:example.com/app:v2", delta)
	if code != int(fault.Integrity) || !strings.Contains(stderr, "nor a layer with its diffID") {
		t.Fatalf("wrong baseline: exit %d, want 4 listing layers matched neither by digest nor diffID:\n%s", code, stderr)
	}
	if _, err := pm.TryPodman("image", "exists", "example.com/app:v2"); err == nil {
		t.Fatal("a failed import loaded an image")
	}
	// Planned without recipes for reused layers: the engine's v1 has the
	// base layer's content but the delta cannot rebuild its blob; the
	// preflight names that layer and why, and only that one.
	loadIntoPodman(t, pm, fx, "docker-v1", "example.com/app:v1")
	noRecipes := filepath.Join(t.TempDir(), "n.dlt")
	if code, e := diffahRun(t, nil, "export", "--reused-recipes", "off", "--target", "oci:"+filepath.Join(fx, "docker-v2"), "--baseline", "oci:"+filepath.Join(fx, "docker-v1"), "-o", noRecipes); code != 0 {
		t.Fatal(e)
	}
	base, _ := fixtureImage(t, fx, "docker-v2").Manifest()
	code, stderr = diffahRun(t, nil, "import", "--baseline", "docker-daemon:example.com/app:v1", "-o", "docker-daemon:example.com/app:v2", noRecipes)
	if code != int(fault.Integrity) || !strings.Contains(stderr, "1 blob(s) not reachable") || !strings.Contains(stderr, base.Layers[0].Digest.String()+": reused layer not in baseline docker-daemon:example.com/app:v1; it has a layer with the same diffID") ||
		!strings.Contains(stderr, "records no recipe") {
		t.Fatalf("no recipes: exit %d, want 4 naming the base layer and why:\n%s", code, stderr)
	}
	code, stderr = diffahRun(t, nil, "import", "--dry-run", "--baseline", "docker-daemon:example.com/nothere:v1", delta)
	if code != int(fault.Env) || !strings.Contains(stderr, "docker image ls") {
		t.Fatalf("absent baseline image: exit %d\n%s", code, stderr)
	}
}

// TestDaemonProducer: the producer reads from an engine too. Planned
// against the engine's v1 (uncompressed layers), the registry v2's
// unchanged base layer is reused by diffID, not shipped, and the site
// rebuilds v2 byte for byte; a target read from the engine, planned
// against the registry v1, imports into an engine with v2's image ID.
func TestDaemonProducer(t *testing.T) {
	fx := fixtures(t)
	pm := testpodman.Start(t)
	t.Setenv("DOCKER_HOST", pm.Host)
	loadIntoPodman(t, pm, fx, "docker-v1", "example.com/app:v1")
	loadIntoPodman(t, pm, fx, "docker-v2", "example.com/build:v2")
	reg := fixtureImage(t, fx, "docker-v2")
	rm, _ := reg.Manifest()
	work := t.TempDir()

	planJSON := filepath.Join(work, "plan.json")
	code, stderr := diffahRunOut(t, planJSON, "plan", "--target", "oci:"+filepath.Join(fx, "docker-v2"), "--baseline", "docker-daemon:example.com/app:v1")
	if code != 0 {
		t.Fatal(stderr)
	}
	raw, _ := os.ReadFile(planJSON)
	if !strings.Contains(string(raw), `"digest": "`+rm.Layers[0].Digest.String()+`",`) || !strings.Contains(string(raw), "compressed otherwise; rebuilt from it as gzip/go/6") {
		t.Fatalf("the base layer is not reused by diffID:\n%s", raw)
	}
	delta := filepath.Join(work, "a.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "oci:"+filepath.Join(fx, "docker-v2"), "--baseline", "docker-daemon:example.com/app:v1", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	out := filepath.Join(work, "out")
	if code, e := diffahRun(t, nil, "import", "--baseline", "docker-daemon:example.com/app:v1", "-o", "oci:"+out+":v2", delta); code != 0 {
		t.Fatal(e)
	}
	if got, want := indexDigest(t, out), indexDigest(t, filepath.Join(fx, "docker-v2")); got != want {
		t.Fatalf("rebuilt %s, registry form is %s", got, want)
	}

	delta = filepath.Join(work, "b.dlt")
	if code, e := diffahRun(t, nil, "export", "--target", "docker-daemon:example.com/build:v2", "--baseline", "oci:"+filepath.Join(fx, "docker-v1"), "-o", delta); code != 0 {
		t.Fatal(e)
	}
	code, stderr = diffahRun(t, nil, "import", "--baseline", "oci:"+filepath.Join(fx, "docker-v1"), "-o", "docker-daemon:example.com/app:v2", delta)
	cfg, _ := reg.ConfigName()
	if code != 0 || !strings.Contains(stderr, "image ID "+cfg.String()) {
		t.Fatalf("import: exit %d, want the image ID %s:\n%s", code, cfg, stderr)
	}
}

// diffahRunOut runs diffah with stdout to the file out.
func diffahRunOut(t *testing.T, out string, args ...string) (int, string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var errb strings.Builder
	code := run(args, strings.NewReader(""), f, &errb)
	return code, errb.String()
}

// TestDaemonBundle: partial and strict mode with engine baselines and
// outputs, as with any transport. svc-c's baseline in the engine is the
// wrong image: --strict fails before loading anything (exit 4); by default
// svc-c is skipped and the others load (exit 6). A dry run reads only the
// engine.
func TestDaemonBundle(t *testing.T) {
	fx := fixtures(t)
	pm := testpodman.Start(t)
	t.Setenv("DOCKER_HOST", pm.Host)
	work := t.TempDir()
	var plans []byte
	args := []string{"import"}
	for _, s := range []string{"svc-a", "svc-b", "svc-c"} {
		out := filepath.Join(work, s+".json")
		if code, e := diffahRunOut(t, out, "plan", "--name", s, "--target", "oci:"+fx+"/bundle/"+s+"-v2", "--baseline", "oci:"+fx+"/bundle/"+s+"-v1"); code != 0 {
			t.Fatal(e)
		}
		b, _ := os.ReadFile(out)
		plans = append(plans, b...)
		src := "bundle/" + s + "-v1"
		if s == "svc-c" {
			src = "unrelated"
		}
		pushFixture(t, fx, src, "docker-daemon:example.com/"+s+":1")
		args = append(args, "--baseline", s+"=docker-daemon:example.com/"+s+":1", "-o", s+"=docker-daemon:example.com/"+s+":2")
	}
	delta := filepath.Join(work, "b.dlt")
	if code, e := diffahRun(t, plans, "pack", "--independent", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	loaded := func(s string) bool {
		_, err := pm.TryPodman("image", "exists", "example.com/"+s+":2")
		return err == nil
	}
	code, stderr := diffahRun(t, nil, append(append([]string{}, args[0], "--dry-run"), append(args[1:], delta)...)...)
	if code != int(fault.Partial) || !strings.Contains(stderr, "SKIPPED  svc-c") {
		t.Fatalf("dry run: exit %d, want 6 with svc-c skipped:\n%s", code, stderr)
	}
	code, stderr = diffahRun(t, nil, append(append([]string{}, args[0], "--strict"), append(args[1:], delta)...)...)
	if code != int(fault.Integrity) || loaded("svc-a") || loaded("svc-b") || loaded("svc-c") {
		t.Fatalf("--strict: exit %d (want 4) and loaded a=%v b=%v c=%v:\n%s", code, loaded("svc-a"), loaded("svc-b"), loaded("svc-c"), stderr)
	}
	code, stderr = diffahRun(t, nil, append(args, delta)...)
	if code != int(fault.Partial) || !loaded("svc-a") || !loaded("svc-b") || loaded("svc-c") {
		t.Fatalf("partial: exit %d (want 6) and loaded a=%v b=%v c=%v:\n%s", code, loaded("svc-a"), loaded("svc-b"), loaded("svc-c"), stderr)
	}
	for _, s := range []string{"svc-a", "svc-b"} {
		cfg, _ := fixtureImage(t, fx, "bundle/"+s+"-v2").ConfigName()
		if id := strings.TrimSpace(string(pm.Podman(t, "image", "inspect", "--format", "{{.Id}}", "example.com/"+s+":2"))); id != cfg.Hex {
			t.Errorf("%s: engine ID %s, want %s", s, id, cfg.Hex)
		}
	}
}

// TestDaemonBundleCross: a service new to the site (planned with
// --no-baseline) reuses the base layer from another image's baseline;
// with that baseline in the engine (uncompressed), the layer is rebuilt by
// diffID and both images load with their image IDs.
func TestDaemonBundleCross(t *testing.T) {
	fx := fixtures(t)
	pm := testpodman.Start(t)
	t.Setenv("DOCKER_HOST", pm.Host)
	work := t.TempDir()
	pushFixture(t, fx, "bundle/svc-a-v1", "docker-daemon:example.com/svc-a:1")
	var plans []byte
	for _, args := range [][]string{
		{"plan", "--name", "svc-a", "--target", "oci:" + fx + "/bundle/svc-a-v2", "--baseline", "oci:" + fx + "/bundle/svc-a-v1"},
		{"plan", "--name", "svc-c", "--target", "oci:" + fx + "/bundle/svc-c-v2", "--no-baseline"},
	} {
		out := filepath.Join(work, args[2]+".json")
		if code, e := diffahRunOut(t, out, args...); code != 0 {
			t.Fatal(e)
		}
		b, _ := os.ReadFile(out)
		plans = append(plans, b...)
	}
	delta := filepath.Join(work, "b.dlt")
	if code, e := diffahRun(t, plans, "pack", "-o", delta); code != 0 {
		t.Fatal(e)
	}
	code, stderr := diffahRun(t, nil, "import", "--baseline", "svc-a=docker-daemon:example.com/svc-a:1",
		"-o", "svc-a=docker-daemon:example.com/svc-a:2", "-o", "svc-c=docker-daemon:example.com/svc-c:2", delta)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s", code, stderr)
	}
	for _, s := range []string{"svc-a", "svc-c"} {
		cfg, _ := fixtureImage(t, fx, "bundle/"+s+"-v2").ConfigName()
		if !strings.Contains(stderr, "image ID "+cfg.String()) {
			t.Errorf("%s: image ID %s not reported:\n%s", s, cfg, stderr)
		}
	}
}
