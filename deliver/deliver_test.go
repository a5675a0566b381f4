package deliver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/imgdiff"
	"github.com/diffah/diffah/imgref"
	"github.com/diffah/diffah/pack"
	"github.com/diffah/diffah/plan"
	"github.com/diffah/diffah/resolve"
	"github.com/diffah/diffah/sidecar"
	"github.com/diffah/diffah/unpack"
)

func fixture(name string) string { return filepath.Join("..", "testdata", "images", name) }

func TestDefaultName(t *testing.T) {
	for in, want := range map[string]string{
		"docker://reg.local/app:2": "app",
		"docker://localhost:5000/team/app@sha256:" + strings.Repeat("a", 64): "app",
		"docker://busybox":            "busybox",
		"oci:./images/app-v2":         "app-v2",
		"oci-archive:/tmp/app.tar:v2": "app",
		"docker-archive:x/web.tar":    "web",
		"dir:./+++":                   "image",
		"oci:/srv/_x":                 "image",
	} {
		r, err := imgref.Parse(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := DefaultName(r); got != want {
			t.Errorf("DefaultName(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestParseOutputs(t *testing.T) {
	outs, err := ParseOutputs([]string{"a=oci:./a", "docker://reg.local/b:1"})
	if err != nil {
		t.Fatal(err)
	}
	if outs["a"].Path != "./a" || outs[""].Transport != imgref.Docker {
		t.Fatalf("got %+v", outs)
	}
	if got := LocalPaths(outs); len(got) != 1 || got[0] != "./a" {
		t.Errorf("LocalPaths = %v", got)
	}
	if _, err := ParseOutputs([]string{"a=oci:./a", "a=oci:./b"}); fault.KindOf(err, 0) != fault.Usage {
		t.Errorf("a name given twice: %v", err)
	}
	if _, err := ParseOutputs([]string{"./bare"}); fault.KindOf(err, 0) != fault.Usage || !strings.Contains(err.Error(), "-o ./bare") {
		t.Errorf("a bare path: %v", err)
	}
}

func TestNameInput(t *testing.T) {
	e := errors.New("truncated tar")
	if got := NameInput("docker://reg.local/d:1", e); !strings.HasPrefix(got.Error(), "docker://reg.local/d:1: ") || !errors.Is(got, e) {
		t.Errorf("registry input not named: %v", got)
	}
	if got := NameInput("app.dlt", e); got != e {
		t.Errorf("a file input was renamed: %v", got)
	}
	named := errors.New("reg.local/d:1: gone")
	if got := NameInput("docker://reg.local/d:1", named); got != named {
		t.Errorf("named twice: %v", got)
	}
}

func TestMountableReuse(t *testing.T) {
	img, err := imgref.Open(context.Background(), imgref.Ref{Transport: imgref.OCI, Path: fixture("v1")}, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	reg, _ := imgref.Parse("docker://127.0.0.1:5000/app:2")
	local := resolve.Baseline{Ref: "oci:v1", Image: img}
	// A local baseline: a push cannot mount from it.
	if MountableReuse(map[string]resolve.Baseline{"": local}, map[string]imgref.Ref{"": reg}, false)("app", sidecar.Blob{}) {
		t.Error("a layer of a local baseline left out of the layout")
	}
	// A registry baseline on the same registry mounts; one held by another
	// image's baseline does not.
	img.Ref, _ = imgref.Parse("docker://127.0.0.1:5000/app:1")
	same := MountableReuse(map[string]resolve.Baseline{"": local}, map[string]imgref.Ref{"": reg}, false)
	if !same("app", sidecar.Blob{}) {
		t.Error("a layer the push can mount is downloaded")
	}
	if same("app", sidecar.Blob{Decision: sidecar.Decision[sidecar.PatchRef]{From: "other"}}) {
		t.Error("a layer of another image's baseline left out")
	}
	other, _ := imgref.Parse("docker://127.0.0.2:5000/app:2")
	if MountableReuse(map[string]resolve.Baseline{"": local}, map[string]imgref.Ref{"": other}, false)("app", sidecar.Blob{}) {
		t.Error("mount across registries")
	}
}

// Export then import through the library, as cmd/diffah does: the image
// comes back with the target's manifest digest, and an output is written.
func TestExportImport(t *testing.T) {
	ctx := context.Background()
	p, err := Plan(ctx, PlanRequest{Target: "oci:" + fixture("v2"), Baseline: "oci:" + fixture("v1"), IntraLayer: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "v2" {
		t.Errorf("default name %q", p.Name)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "app.dlt")
	if _, err := WriteArchive(ctx, archive, imgref.Options{}, func(w io.Writer) error {
		_, err := pack.Write(ctx, w, []*plan.Plan{p}, pack.Options{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	in, closeIn, err := OpenArchive(ctx, archive, nil, imgref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeIn()
	outs, _ := ParseOutputs([]string{"oci:" + filepath.Join(dir, "out")})
	var rep *resolve.Report
	err = Import(ctx, ImportRequest{Archive: in, BaselineArgs: []string{"oci:" + fixture("v1")}, Outputs: outs, OnReport: func(r *resolve.Report) { rep = r }})
	if err != nil {
		t.Fatal(err)
	}
	if rep == nil || len(rep.Images) != 1 || rep.Images[0].ManifestDigest.String() != p.Target.Manifest.Digest.String() {
		t.Fatalf("report %+v", rep)
	}
	idx, err := os.ReadFile(filepath.Join(dir, "out", "index.json"))
	if err != nil || !bytes.Contains(idx, []byte(p.Target.Manifest.Digest.String())) {
		t.Fatalf("output index.json: %v %s", err, idx)
	}
	// No work directory is left beside the output.
	ents, _ := os.ReadDir(filepath.Join(dir, "out"))
	for _, e := range ents {
		if strings.Contains(e.Name(), "diffah") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestOpenArchiveMissing(t *testing.T) {
	_, _, err := OpenArchive(context.Background(), filepath.Join(t.TempDir(), "nope.dlt"), nil, imgref.Options{})
	if fault.KindOf(err, 0) != fault.Env {
		t.Fatalf("got %v", err)
	}
	if _, _, err := OpenArchive(context.Background(), "docker://", nil, imgref.Options{}); fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("malformed docker:// ref: %v", err)
	}
}

// TestDiff: an image equals itself and differs from its next version; a
// reference that cannot be opened is named by its place (REF0, REF1).
func TestDiff(t *testing.T) {
	ctx := context.Background()
	v1, v2 := "oci:"+fixture("v1"), "oci:"+fixture("v2")
	if res, err := Diff(ctx, [2]string{v1, v1}, imgref.Options{}, imgdiff.Options{}); err != nil || !res.Equal {
		t.Fatalf("v1 against itself: %+v, %v", res, err)
	}
	if res, err := Diff(ctx, [2]string{v1, v2}, imgref.Options{}, imgdiff.Options{}); err != nil || res.Equal {
		t.Fatalf("v1 against v2: %+v, %v", res, err)
	}
	if _, err := Diff(ctx, [2]string{v1, "oci:" + fixture("absent")}, imgref.Options{}, imgdiff.Options{}); err == nil || !strings.HasPrefix(err.Error(), "REF1: ") {
		t.Fatalf("absent REF1: %v", err)
	}
}

// TestResolve: a layout unpacked from an archive resolves against its
// baseline and is written to its output, the report naming the target.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	p, err := Plan(ctx, PlanRequest{Target: "oci:" + fixture("v2"), Baseline: "oci:" + fixture("v1"), IntraLayer: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if _, err := pack.Write(ctx, &archive, []*plan.Plan{p}, pack.Options{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if _, err := unpack.Read(ctx, &archive, dir, unpack.Options{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	outs, _ := ParseOutputs([]string{"oci:" + out})
	var rep *resolve.Report
	var written []Written
	err = Resolve(ctx, dir, ImportRequest{BaselineArgs: []string{"oci:" + fixture("v1")}, Outputs: outs,
		OnReport: func(r *resolve.Report) { rep = r }, OnWritten: func(w Written) { written = append(written, w) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep == nil || len(rep.Images) != 1 || rep.Images[0].ManifestDigest != p.Target.Manifest.Digest || len(written) != 1 {
		t.Fatalf("report %+v, written %+v", rep, written)
	}
	if idx, err := os.ReadFile(filepath.Join(out, "index.json")); err != nil || !bytes.Contains(idx, []byte(p.Target.Manifest.Digest.String())) {
		t.Fatalf("output index.json: %v %s", err, idx)
	}
	if err := Resolve(ctx, dir, ImportRequest{BaselineArgs: []string{"oci:" + fixture("absent")}}); err == nil {
		t.Fatal("an absent baseline resolved")
	}
}
