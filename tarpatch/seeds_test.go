package tarpatch

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecode from the encoder")

// fuzzSeeds are patches against FuzzDecode's source (fuzzSource), one per
// op and form: what the fuzzer starts from.
func fuzzSeeds(t testing.TB) map[string][]byte {
	old, _ := fuzzSource(t)
	out := map[string][]byte{}
	for name, c := range seedCases(t) {
		var p bytes.Buffer
		if _, err := Encode(context.Background(), &p, bytes.NewReader(mktar(t, c.ents, nil)), []Source{src(old)}, c.o); err != nil {
			t.Fatal(err)
		}
		out[name] = p.Bytes()
		out[name+"-truncated"] = p.Bytes()[:p.Len()/2]
	}
	return out
}

type seedCase struct {
	ents []entry
	o    EncodeOptions
}

// seedCases are the layers the seeds encode.
func seedCases(t testing.TB) map[string]seedCase {
	_, js := fuzzSource(t)
	bin := rnd(7, 16<<10)
	// Every 16th byte changed: approximate copies (ADIFF) win.
	relinked := append([]byte{}, js...)
	for i := 0; i < len(relinked); i += 16 {
		relinked[i]++
	}
	code := bundle(11, 20<<10)
	return map[string]seedCase{
		"copy":    {[]entry{{name: "a.js", body: js}}, EncodeOptions{FileByFile: true}},
		"literal": {[]entry{{name: "new.bin", body: bin}, {name: "junk"}}, EncodeOptions{FileByFile: true}},
		"delta":   {[]entry{{name: "a.js", body: mutate(js, 1, 5)}}, EncodeOptions{FileByFile: true}},
		"binary":  {[]entry{{name: "a.js", body: append(append([]byte{}, js[:5000]...), bin...)}}, EncodeOptions{FileByFile: true}},
		"empty":   {nil, EncodeOptions{FileByFile: true}},
		"whole":   {[]entry{{name: "a.js", body: mutate(js, 2, 1)}, {name: "c", body: []byte("new")}}, EncodeOptions{}},
		// The edit form (format 4): a.js grown at its head.
		"edit":  {[]entry{{name: "a.js", body: append([]byte("// v2\n"), js...)}}, EncodeOptions{}},
		"adiff": {[]entry{{name: "a.js", body: relinked}}, EncodeOptions{FileByFile: true}},
		// A dictionary range re-indented (format 3).
		"reindent": {[]entry{{name: "lib/b.js", body: code}, {name: "a.js", body: reindented(code, 2)}}, EncodeOptions{FileByFile: true}},
	}
}

// fuzzSource is the one source tar FuzzDecode decodes against.
func fuzzSource(t testing.TB) (old, js []byte) {
	js = textData(2, 20<<10)
	return mktar(t, []entry{{name: "a.js", body: js}}, nil), js
}

// TestFuzzSeeds checks that the committed seeds are what the encoder
// writes today (so they exercise the current format), and rewrites them
// with -update-seeds.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	for name, p := range fuzzSeeds(t) {
		file := filepath.Join(dir, name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", p)
		if *updateSeeds {
			if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil || string(got) != want {
			t.Errorf("%s is stale or missing (run go test ./tarpatch -run TestFuzzSeeds -update-seeds)", file)
		}
	}
}

// TestDecodesOldFormats: patches of the previous formats still decode to
// their layers: diffah-tar/1 (the v1-* seeds, written by the encoder
// before ADIFF existed), diffah-tar/2 (the v2-* seeds, written before
// re-indented ranges) and diffah-tar/3 (the v3-* seeds, written before
// the edit form).
func TestDecodesOldFormats(t *testing.T) {
	old, _ := fuzzSource(t)
	for _, v := range []struct {
		prefix string
		magic  []byte
	}{{"v1-", magicV1}, {"v2-", magicV2}, {"v3-", magic}} {
		n := 0
		for name, c := range seedCases(t) {
			p, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDecode", v.prefix+name))
			if os.IsNotExist(err) {
				continue // a case added after that format
			}
			if err != nil {
				t.Fatal(err)
			}
			var raw []byte
			if _, err := fmt.Sscanf(strings.TrimPrefix(string(p), "go test fuzz v1\n[]byte("), "%q", &raw); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !bytes.HasPrefix(raw, v.magic) && !bytes.HasPrefix(raw, wholeMagic) {
				t.Fatalf("%s%s is not a patch of that format", v.prefix, name)
			}
			want := mktar(t, c.ents, nil)
			var out bytes.Buffer
			if err := Decode(context.Background(), &out, bytes.NewReader(raw), []Source{src(old)}, DecodeOptions{MaxOutput: int64(len(want))}); err != nil {
				t.Fatalf("%s%s: %v", v.prefix, name, err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("%s%s decodes to other bytes", v.prefix, name)
			}
			n++
		}
		if n < 5 {
			t.Fatalf("only %d %s seeds decoded", n, v.prefix)
		}
	}
	if !Decodes(CodecV1) || !Decodes(CodecV2) || !Decodes(CodecV3) || !Decodes(Codec) || !Decodes(CodecBundleV3) || !Decodes(CodecBundle) || Decodes("diffah-tar/5") {
		t.Fatal("Decodes")
	}
}

// TestEditSeed: the edit seed is an edit-form patch, so the fuzzer starts
// from one.
func TestEditSeed(t *testing.T) {
	if p := fuzzSeeds(t)["edit"]; !bytes.HasPrefix(p, editMagic) {
		t.Fatalf("edit seed %q is not the edit form", p[:min(8, len(p))])
	}
}

// TestADiffSeed: the adiff seed holds an ADIFF op, so the fuzzer starts
// from one.
func TestADiffSeed(t *testing.T) {
	old, _ := fuzzSource(t)
	c := seedCases(t)["adiff"]
	st, _ := roundTrip(t, mktar(t, c.ents, nil), [][]byte{old}, c.o)
	if st.ADiffs != 1 {
		t.Fatalf("stats %+v: want one ADIFF", st)
	}
}

// TestFuzzSeedsELF writes (with -update-seeds) or checks the seeds of
// FuzzDecodeELF: an XADIFF patch and its truncation.
func TestFuzzSeedsELF(t *testing.T) {
	old, newTar := elfFuzzSource(t)
	var p bytes.Buffer
	if _, err := Encode(context.Background(), &p, bytes.NewReader(newTar), []Source{src(old)}, EncodeOptions{FileByFile: true}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeELF")
	for name, b := range map[string][]byte{"xadiff": p.Bytes(), "xadiff-truncated": p.Bytes()[:p.Len()/2]} {
		file := filepath.Join(dir, name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(file); err != nil || string(got) != want {
			t.Errorf("%s is stale or missing (run go test ./tarpatch -run TestFuzzSeeds -update-seeds)", file)
		}
	}
}
