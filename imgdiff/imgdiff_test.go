package imgdiff

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/diffah/diffah/fault"
)

func compare(t *testing.T, a, b v1.Image, o Options) *Result {
	t.Helper()
	r, err := Compare(context.Background(), a, b, o)
	if err != nil {
		t.Fatalf("Compare: %v", err)
	}
	return r
}

func assertChanges(t *testing.T, what string, got, want []Change) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	t.Errorf("%s: got %d changes, want %d", what, len(got), len(want))
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w Change
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("  [%d]\n   got  %+v\n   want %+v", i, g, w)
		}
	}
}

// basePair builds two images sharing layer 0 whose layer 1 differs in one
// way per file.
func basePair(t *testing.T) (v1.Image, v1.Image) {
	base := layer(t, dir("etc/"), file("etc/hosts", "h"), file("bin/sh", "sh"))
	l0 := layer(t,
		file("app/a", "one"), file("app/b", "two"), file("app/m", "m"), file("app/o", "o"),
		symlink("app/l", "a"), file("app/gone", "x"), file("app/x", "x").pax("SCHILY.xattr.user.k", "1"))
	l1 := layer(t,
		file("app/a", "ONE"), file("app/b", "two").mode(0o755), file("app/m", "m").owner(1000, 1000),
		file("app/o", "o").user("daemon", "daemon"), symlink("app/l", "b"), file("app/new", "n"),
		file("app/x", "x").pax("SCHILY.xattr.user.k", "2"), whiteout("etc/.wh.hosts"))
	return image(t, nil, base, l0), image(t, nil, base, l1)
}

func TestCompareStrictFiles(t *testing.T) {
	img0, img1 := basePair(t)
	r := compare(t, img0, img1, Options{})
	if r.Equal {
		t.Fatal("Equal = true for different images")
	}
	perm := func(d, mode, owner, size string) string { return d + " " + mode + " " + owner + " " + size }
	want := []Change{
		{TypeFile, 1, "/app/a", perm(sum("one"), "0644", "0:0", "3B"), perm(sum("ONE"), "0644", "0:0", "3B"), "content"},
		{TypeFile, 1, "/app/b", perm(sum("two"), "0644", "0:0", "3B"), perm(sum("two"), "0755", "0:0", "3B"), "mode"},
		{TypeFile, 1, "/app/gone", perm(sum("x"), "0644", "0:0", "1B"), "-", "removed"},
		{TypeSymlink, 1, "/app/l", "-> a 0777 0:0", "-> b 0777 0:0", "link"},
		{TypeFile, 1, "/app/m", perm(sum("m"), "0644", "0:0", "1B"), perm(sum("m"), "0644", "1000:1000", "1B"), "owner"},
		{TypeFile, 1, "/app/new", "-", perm(sum("n"), "0644", "0:0", "1B"), "added"},
		{TypeFile, 1, "/app/o", perm(sum("o"), "0644", "0:0", "1B") + " user=root:root", perm(sum("o"), "0644", "0:0", "1B") + " user=daemon:daemon", "user"},
		{TypeFile, 1, "/app/x", perm(sum("x"), "0644", "0:0", "1B") + " xattrs{SCHILY.xattr.user.k=1}", perm(sum("x"), "0644", "0:0", "1B") + " xattrs{SCHILY.xattr.user.k=2}", "xattrs"},
		{TypeWhiteout, 1, "/etc/hosts", "-", "whiteout", "added"},
	}
	assertChanges(t, "entries", entryChanges(r.Changes), want)

	ls0, _ := img0.Layers()
	ls1, _ := img1.Layers()
	d0, _ := ls0[1].Digest()
	d1, _ := ls1[1].Digest()
	id0, _ := ls0[1].DiffID()
	id1, _ := ls1[1].DiffID()
	layers := only(r.Changes, TypeLayer)
	if len(layers) < 2 || layers[0] != (Change{TypeLayer, 1, "diffID", id0.String(), id1.String(), "changed"}) ||
		layers[1] != (Change{TypeLayer, 1, "digest", d0.String(), d1.String(), "changed"}) {
		t.Errorf("layer changes = %+v", layers)
	}
	for _, c := range layers[2:] {
		if c.Name != "size" {
			t.Errorf("unexpected layer change %+v", c)
		}
	}
	if cs := only(r.Changes, TypeConfig); len(cs) != 0 {
		t.Errorf("config changes = %+v, want none (rootfs is reported per layer)", cs)
	}
	m0, _ := img0.Manifest()
	m1, _ := img1.Manifest()
	if cs := only(r.Changes, TypeManifest); len(cs) == 0 || cs[0] != (Change{TypeManifest, NoLayer, "config.digest", m0.Config.Digest.String(), m1.Config.Digest.String(), "changed"}) {
		t.Errorf("manifest changes = %+v", cs)
	}
	if r.Summary.Total != len(r.Changes) || r.Summary.Added != 2 || r.Summary.Removed != 1 || r.Summary.ByType[TypeWhiteout] != 1 {
		t.Errorf("summary = %+v", r.Summary)
	}
}

func TestCompareSemanticFiles(t *testing.T) {
	img0, img1 := basePair(t)
	r := compare(t, img0, img1, Options{Semantic: true})
	perm := func(d, mode, owner, size string) string { return d + " " + mode + " " + owner + " " + size }
	// /app/o differs only in user names: ignored. /etc/hosts is whited out.
	want := []Change{
		{TypeFile, NoLayer, "/app/a", perm(sum("one"), "0644", "0:0", "3B"), perm(sum("ONE"), "0644", "0:0", "3B"), "content"},
		{TypeFile, NoLayer, "/app/b", perm(sum("two"), "0644", "0:0", "3B"), perm(sum("two"), "0755", "0:0", "3B"), "mode"},
		{TypeFile, NoLayer, "/app/gone", perm(sum("x"), "0644", "0:0", "1B"), "-", "removed"},
		{TypeSymlink, NoLayer, "/app/l", "-> a 0777 0:0", "-> b 0777 0:0", "link"},
		{TypeFile, NoLayer, "/app/m", perm(sum("m"), "0644", "0:0", "1B"), perm(sum("m"), "0644", "1000:1000", "1B"), "owner"},
		{TypeFile, NoLayer, "/app/new", "-", perm(sum("n"), "0644", "0:0", "1B"), "added"},
		{TypeFile, NoLayer, "/app/x", perm(sum("x"), "0644", "0:0", "1B") + " xattrs{SCHILY.xattr.user.k=1}", perm(sum("x"), "0644", "0:0", "1B") + " xattrs{SCHILY.xattr.user.k=2}", "xattrs"},
		{TypeFile, NoLayer, "/etc/hosts", perm(sum("h"), "0644", "0:0", "1B"), "-", "removed"},
	}
	assertChanges(t, "semantic", r.Changes, want)
}

func TestCompareTimestampsOnly(t *testing.T) {
	later := epoch.Add(time.Hour)
	img0 := image(t, nil, layerAt(t, 1, dir("app/"), file("app/a", "same")))
	img1 := image(t, func(c *v1.ConfigFile) { c.Created = v1.Time{Time: later} },
		layerAt(t, 9, dir("app/").mtime(later), file("app/a", "same").mtime(later)))

	if r := compare(t, img0, img1, Options{Semantic: true}); !r.Equal || len(r.Changes) != 0 {
		t.Errorf("semantic: Equal=%v changes=%+v, want equal", r.Equal, r.Changes)
	}

	r := compare(t, img0, img1, Options{})
	if r.Equal {
		t.Fatal("strict: timestamps differ but Equal = true")
	}
	want := []Change{
		{TypeDir, 0, "/app", "dir 0755 0:0 mtime=2024-01-02T03:04:05Z", "dir 0755 0:0 mtime=2024-01-02T04:04:05Z", "mtime"},
		{TypeFile, 0, "/app/a", sum("same") + " 0644 0:0 4B mtime=2024-01-02T03:04:05Z", sum("same") + " 0644 0:0 4B mtime=2024-01-02T04:04:05Z", "mtime"},
	}
	assertChanges(t, "strict entries", entryChanges(r.Changes), want)
	assertChanges(t, "strict config", only(r.Changes, TypeConfig), []Change{
		{TypeConfig, NoLayer, "created", "2024-01-02T03:04:05Z", "2024-01-02T04:04:05Z", "changed"},
	})
}

func TestCompareCompressionOnly(t *testing.T) {
	ents := []ent{dir("app/"), file("app/a", strings.Repeat("compressible ", 200))}
	img0 := image(t, nil, layerAt(t, 1, ents...))
	img1 := image(t, nil, layerAt(t, 9, ents...))
	if r := compare(t, img0, img1, Options{Semantic: true}); !r.Equal {
		t.Errorf("semantic: changes = %+v, want equal", r.Changes)
	}
	r := compare(t, img0, img1, Options{})
	for _, c := range r.Changes {
		// Same diffID: the tar is the same, so no file can differ.
		if c.Type != TypeLayer && c.Type != TypeManifest {
			t.Errorf("strict: unexpected %+v", c)
		}
		if c.Type == TypeLayer && c.Name != "digest" && c.Name != "size" {
			t.Errorf("strict: unexpected layer change %+v", c)
		}
	}
	if len(only(r.Changes, TypeLayer)) == 0 {
		t.Error("strict: compressed digests differ but no Layer change")
	}
}

func TestCompareSemanticFlattening(t *testing.T) {
	// Side 0 reaches its filesystem through whiteouts over two layers;
	// side 1 writes the same filesystem in one.
	img0 := image(t, nil,
		layer(t, dir("d/"), file("a", "A"), file("b", "B"), file("d/c", "C"), file("d/x", "X"), dir("e/"), file("e/f", "F")),
		layer(t, whiteout(".wh.b"), dir("d/"), whiteout("d/.wh..wh..opq"), file("d/x", "X2"), file("e", "now a file")))
	img1 := image(t, nil,
		layer(t, dir("d/"), file("a", "A"), file("d/x", "X2"), file("e", "now a file")))
	if r := compare(t, img0, img1, Options{Semantic: true}); !r.Equal {
		t.Errorf("semantic: changes = %+v, want equal", r.Changes)
	}

	img2 := image(t, nil,
		layer(t, dir("d/"), file("a", "A"), file("b", "B"), file("d/c", "C"), file("d/x", "X2"), file("e", "now a file")))
	r := compare(t, img0, img2, Options{Semantic: true})
	assertChanges(t, "semantic", r.Changes, []Change{
		{TypeFile, NoLayer, "/b", "-", sum("B") + " 0644 0:0 1B", "added"},
		{TypeFile, NoLayer, "/d/c", "-", sum("C") + " 0644 0:0 1B", "added"},
	})

	r = compare(t, img0, img2, Options{})
	assertChanges(t, "strict layer 1", only(r.Changes, TypeWhiteout), []Change{
		{TypeWhiteout, 1, "/b", "whiteout", "-", "removed"},
		{TypeWhiteout, 1, "/d", "opaque whiteout", "-", "removed"},
	})
	var count []Change
	for _, c := range only(r.Changes, TypeManifest) {
		if c.Name == "layers" {
			count = append(count, c)
		}
	}
	assertChanges(t, "strict layer count", count, []Change{
		{TypeManifest, NoLayer, "layers", "2", "1", "changed"},
	})
	var layerRemoved bool
	for _, c := range r.Changes {
		if c.Type == TypeLayer && c.Layer == 1 {
			layerRemoved = c.Name == "layer" && c.Detail == DetailRemoved && c.Input1 == "-"
		}
	}
	if !layerRemoved {
		t.Errorf("strict: no Layer removed change for layer 1 in %+v", only(r.Changes, TypeLayer))
	}
}

func TestCompareConfig(t *testing.T) {
	l := layer(t, file("a", "A"))
	img0 := image(t, func(c *v1.ConfigFile) {
		c.Config.Labels = map[string]string{"version": "1"}
	}, l)
	img1 := image(t, func(c *v1.ConfigFile) {
		c.Created = v1.Time{Time: epoch.Add(time.Minute)}
		c.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "FOO=bar=baz", "EMPTY=", "BARE"}
		c.Config.Cmd = []string{"/bin/sh", "-c", "true"}
		c.Config.Labels = map[string]string{"version": "2", "org.opencontainers.image.created": "2024-01-02"}
		c.Config.WorkingDir = "/srv"
	}, l)

	strict := compare(t, img0, img1, Options{})
	assertChanges(t, "strict", only(strict.Changes, TypeConfig), []Change{
		{TypeConfig, NoLayer, "config.Cmd", `["/bin/sh"]`, `["/bin/sh","-c","true"]`, "changed"},
		{TypeConfig, NoLayer, "config.Env.BARE", "-", "(no =)", "added"},
		{TypeConfig, NoLayer, "config.Env.EMPTY", "-", `""`, "added"},
		{TypeConfig, NoLayer, "config.Env.FOO", "-", "bar=baz", "added"},
		{TypeConfig, NoLayer, "config.Env.PATH", "/usr/bin:/bin", "/usr/local/bin:/usr/bin:/bin", "changed"},
		{TypeConfig, NoLayer, "config.Labels.org.opencontainers.image.created", "-", "2024-01-02", "added"},
		{TypeConfig, NoLayer, "config.Labels.version", "1", "2", "changed"},
		{TypeConfig, NoLayer, "config.WorkingDir", "-", "/srv", "added"},
		{TypeConfig, NoLayer, "created", "2024-01-02T03:04:05Z", "2024-01-02T03:05:05Z", "changed"},
	})
	if len(entryChanges(strict.Changes)) != 0 || len(only(strict.Changes, TypeLayer)) != 0 {
		t.Errorf("strict: same layer, yet %+v", strict.Changes)
	}

	semantic := compare(t, img0, img1, Options{Semantic: true})
	assertChanges(t, "semantic", semantic.Changes, []Change{
		{TypeConfig, NoLayer, "config.Cmd", `["/bin/sh"]`, `["/bin/sh","-c","true"]`, "changed"},
		{TypeConfig, NoLayer, "config.Env.BARE", "-", "(no =)", "added"},
		{TypeConfig, NoLayer, "config.Env.EMPTY", "-", `""`, "added"},
		{TypeConfig, NoLayer, "config.Env.FOO", "-", "bar=baz", "added"},
		{TypeConfig, NoLayer, "config.Env.PATH", "/usr/bin:/bin", "/usr/local/bin:/usr/bin:/bin", "changed"},
		{TypeConfig, NoLayer, "config.Labels.version", "1", "2", "changed"},
		{TypeConfig, NoLayer, "config.WorkingDir", "-", "/srv", "added"},
	})
}

func TestCompareIdentical(t *testing.T) {
	img0, _ := basePair(t)
	for _, o := range []Options{{}, {Semantic: true}} {
		r := compare(t, img0, img0, o)
		if !r.Equal || len(r.Changes) != 0 || r.Summary.Total != 0 {
			t.Errorf("%+v: identical images give %+v", o, r)
		}
	}
}

// BenchmarkCompare measures both modes on two 1000-file images (4 MiB of
// content each) where every tenth file differs.
func BenchmarkCompare(b *testing.B) {
	var e0, e1 []ent
	for i := 0; i < 1000; i++ {
		body := strings.Repeat(string(rune('a'+i%26)), 4096)
		name := fmt.Sprintf("usr/share/f%04d", i)
		e0 = append(e0, file(name, body))
		if i%10 == 0 {
			body = strings.ToUpper(body)
		}
		e1 = append(e1, file(name, body))
	}
	img0 := image(b, nil, layer(b, e0...))
	img1 := image(b, nil, layer(b, e1...))
	for _, o := range []Options{{}, {Semantic: true}} {
		b.Run(fmt.Sprintf("semantic=%v", o.Semantic), func(b *testing.B) {
			b.SetBytes(2 * 1000 * 4096)
			for b.Loop() {
				r, err := Compare(context.Background(), img0, img1, o)
				if err != nil {
					b.Fatal(err)
				}
				if len(entryChanges(r.Changes)) != 100 {
					b.Fatalf("%d file changes, want 100", len(entryChanges(r.Changes)))
				}
			}
		})
	}
}

func TestCompareConfigsRaw(t *testing.T) {
	for _, tc := range []struct {
		name       string
		raw0, raw1 string
		semantic   bool
		want       []string // "name input0 input1 detail"
	}{
		{"empty object grows", `{"config":{}}`, `{"config":{"Env":["A=1"]}}`, false, []string{"config.Env.A - 1 added"}},
		{"empty object stays", `{"config":{}}`, `{}`, false, []string{"config {} - removed"}},
		{"exposed port", `{"config":{"ExposedPorts":{"80/tcp":{}}}}`, `{"config":{"ExposedPorts":{"443/tcp":{}}}}`, true,
			[]string{"config.ExposedPorts.443/tcp - {} added", "config.ExposedPorts.80/tcp {} - removed"}},
		{"null cmd is no cmd when semantic", `{"config":{"Cmd":null}}`, `{"config":{}}`, true, nil},
		{"null cmd differs when strict", `{"config":{"Cmd":null}}`, `{"config":{}}`, false, []string{"config.Cmd null - removed"}},
		{"semantic ignores noise", `{"created":"a","author":"x","history":[{"created":"a"}],"config":{"Labels":{"org.label-schema.build-date":"1"}}}`,
			`{"created":"b","history":[],"config":{"Labels":{"org.label-schema.build-date":"2"}}}`, true, nil},
		{"history by index", `{"history":[{"created_by":"a"}]}`, `{"history":[{"created_by":"b"},{"created_by":"c"}]}`, false,
			[]string{"history[0].created_by a b changed", "history[1].created_by - c added"}},
		{"platform", `{"architecture":"amd64","os":"linux"}`, `{"architecture":"arm64","os":"linux","variant":"v8"}`, true,
			[]string{"architecture amd64 arm64 changed", "variant - v8 added"}},
		{"rootfs ignored", `{"rootfs":{"diff_ids":["a"]}}`, `{"rootfs":{"diff_ids":["b"]}}`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := compareConfigs([]byte(tc.raw0), []byte(tc.raw1), tc.semantic)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cs {
				got = append(got, strings.Join([]string{c.Name, c.Input0, c.Input1, c.Detail}, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// FuzzCompareConfigs: any pair of documents either fails as Integrity or
// gives changes that mirror when the sides swap; a document never differs
// from itself.
func FuzzCompareConfigs(f *testing.F) {
	f.Add([]byte(`{"config":{"Env":["A=1","B"],"Cmd":null}}`), []byte(`{"config":{"Env":["A=2"],"Labels":{"x":""}}}`), false)
	f.Add([]byte(`{"history":[{"created":"x"}],"rootfs":{}}`), []byte(`[]`), true)
	f.Fuzz(func(t *testing.T, a, b []byte, semantic bool) {
		ab, err := compareConfigs(a, b, semantic)
		if err != nil {
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("untagged: %v", err)
			}
			return
		}
		ba, err := compareConfigs(b, a, semantic)
		if err != nil {
			t.Fatalf("parses one way only: %v", err)
		}
		if len(ab) != len(ba) {
			t.Fatalf("%d changes one way, %d the other", len(ab), len(ba))
		}
		swap := map[string]string{DetailAdded: DetailRemoved, DetailRemoved: DetailAdded, DetailChanged: DetailChanged}
		for i := range ab {
			x, y := ab[i], ba[i]
			if x.Name != y.Name || x.Input0 != y.Input1 || x.Input1 != y.Input0 || swap[x.Detail] != y.Detail {
				t.Fatalf("not mirrored: %+v vs %+v", x, y)
			}
		}
		if same, _ := compareConfigs(a, a, semantic); len(same) != 0 {
			t.Fatalf("a document differs from itself: %+v", same)
		}
	})
}

func TestCompareManifestAnnotations(t *testing.T) {
	base := image(t, nil, layer(t, file("a", "A")))
	annotate := func(m map[string]string) v1.Image {
		img, ok := mutate.Annotations(base, m).(v1.Image)
		if !ok {
			t.Fatal("mutate.Annotations did not return an image")
		}
		return img
	}
	img0 := annotate(map[string]string{"org.opencontainers.image.created": "2024", "vendor": "a"})
	img1 := annotate(map[string]string{"org.opencontainers.image.created": "2025", "vendor": "b", "org.opencontainers.image.ref.name": "v2"})

	strict := compare(t, img0, img1, Options{})
	var anns []Change
	for _, c := range only(strict.Changes, TypeManifest) {
		if strings.HasPrefix(c.Name, "annotations.") {
			anns = append(anns, c)
		}
	}
	assertChanges(t, "strict", anns, []Change{
		{TypeManifest, NoLayer, "annotations.org.opencontainers.image.created", "2024", "2025", "changed"},
		{TypeManifest, NoLayer, "annotations.org.opencontainers.image.ref.name", "-", "v2", "added"},
		{TypeManifest, NoLayer, "annotations.vendor", "a", "b", "changed"},
	})
	assertChanges(t, "semantic", compare(t, img0, img1, Options{Semantic: true}).Changes, []Change{
		{TypeManifest, NoLayer, "annotations.vendor", "a", "b", "changed"},
	})
}

// TestConfigKeyCollision: a top-level key "config.Env" flattens to the
// same names as config.Env; the result must not depend on map order (it
// did: the fuzzer found the two sides disagreeing).
func TestConfigKeyCollision(t *testing.T) {
	a := []byte(`{"config.Env":{"A":"x"},"config":{"Env":["A=1"]}}`)
	b := []byte(`{"config":{"Env":["A=1","A=2"]}}`)
	first, err := compareConfigs(a, b, false)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		again, _ := compareConfigs(a, b, false)
		back, _ := compareConfigs(b, a, false)
		if fmt.Sprint(again) != fmt.Sprint(first) || len(back) != len(first) || back[0].Input0 != first[0].Input1 {
			t.Fatalf("order-dependent: %+v / %+v / reversed %+v", first, again, back)
		}
	}
}
