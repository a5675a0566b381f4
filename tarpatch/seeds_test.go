package tarpatch

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecode from the encoder")

// fuzzSeeds are patches against FuzzDecode's source (fuzzSource), one per
// op and form: what the fuzzer starts from.
func fuzzSeeds(t testing.TB) map[string][]byte {
	old, js := fuzzSource(t)
	bin := rnd(7, 16<<10)
	cases := map[string]struct {
		ents []entry
		o    EncodeOptions
	}{
		"copy":    {[]entry{{name: "a.js", body: js}}, EncodeOptions{FileByFile: true}},
		"literal": {[]entry{{name: "new.bin", body: bin}, {name: "junk"}}, EncodeOptions{FileByFile: true}},
		"delta":   {[]entry{{name: "a.js", body: mutate(js, 1, 5)}}, EncodeOptions{FileByFile: true}},
		"binary":  {[]entry{{name: "a.js", body: append(append([]byte{}, js[:5000]...), bin...)}}, EncodeOptions{FileByFile: true}},
		"empty":   {nil, EncodeOptions{FileByFile: true}},
		"whole":   {[]entry{{name: "a.js", body: mutate(js, 2, 1)}, {name: "c", body: []byte("new")}}, EncodeOptions{}},
	}
	out := map[string][]byte{}
	for name, c := range cases {
		var p bytes.Buffer
		if _, err := Encode(context.Background(), &p, bytes.NewReader(mktar(t, c.ents, nil)), []Source{src(old)}, c.o); err != nil {
			t.Fatal(err)
		}
		out[name] = p.Bytes()
		out[name+"-truncated"] = p.Bytes()[:p.Len()/2]
	}
	return out
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
