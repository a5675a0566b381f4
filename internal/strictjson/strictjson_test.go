package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
)

type inner struct {
	N int `json:"n"`
}

type Embedded struct {
	E string `json:"e"`
}

type doc struct {
	Embedded
	Name  string            `json:"name"`
	List  []inner           `json:"list"`
	Map   map[string]inner  `json:"map"`
	Raw   json.RawMessage   `json:"raw"`
	Bytes []byte            `json:"bytes"`
	Skip  string            `json:"-"`
	Tags  map[string]string `json:"tags,omitempty"`
	Plain string
}

func TestUnmarshal(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	for _, tc := range []struct {
		name, in     string
		allowUnknown bool
		wantErr      string // "" = must decode
	}{
		{"ok", `{"name":"a","e":"emb","list":[{"n":1}],"map":{"k":{"n":2}},"raw":{"any":[1,{"x":2}]},"bytes":"AQI=","Plain":"p"}`, false, ""},
		{"duplicate key", `{"name":"a","name":"b"}`, false, `key "name" appears twice`},
		{"duplicate key nested", `{"list":[{"n":1,"n":2}]}`, false, `$.list[0]: key "n" appears twice`},
		{"duplicate key in map", `{"map":{"k":{"n":1},"k":{"n":2}}}`, false, `key "k" appears twice`},
		{"case-folded key", `{"Name":"a"}`, false, `unknown field "Name"`},
		{"unknown field", `{"nope":1}`, false, `unknown field "nope"`},
		{"unknown field allowed", `{"nope":{"deep":[1]}}`, true, ""},
		{"unknown nested allowed still no duplicates", `{"nope":{"a":1,"a":2}}`, true, `appears twice`},
		{"ignored field is unknown", `{"Skip":"x"}`, false, `unknown field "Skip"`},
		{"trailing data", `{"name":"a"} {}`, false, "trailing data"},
		{"trailing garbage", `{"name":"a"}x`, false, "trailing data"},
		{"too deep", `{"raw":` + deep + `}`, false, "nested deeper than"},
		{"raw keeps duplicates out", `{"raw":{"a":1,"a":2}}`, false, "appears twice"},
		{"not json", `{`, false, "EOF"},
		{"empty", ``, false, "EOF"},
		{"wrong type", `{"name":1}`, false, "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := Unmarshal([]byte(tc.in), &d, tc.allowUnknown)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Unmarshal: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Unmarshal(%s) = %v, want an error containing %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestUnmarshalFills(t *testing.T) {
	var d doc
	in := `{"name":"a","e":"emb","list":[{"n":1}],"map":{"k":{"n":2}},"bytes":"AQI=","Plain":"p"}`
	if err := Unmarshal([]byte(in), &d, false); err != nil {
		t.Fatal(err)
	}
	if d.Name != "a" || d.E != "emb" || d.List[0].N != 1 || d.Map["k"].N != 2 || string(d.Bytes) != "\x01\x02" || d.Plain != "p" {
		t.Fatalf("decoded %+v", d)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"name":"a","list":[{"n":1}],"map":{"k":{"n":2}}}`))
	f.Add([]byte(`{"name":"a","name":"b"}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d doc
		if err := Unmarshal(b, &d, false); err != nil {
			return
		}
		// Whatever strict decoding accepts, encoding/json accepts too,
		// to the same value.
		var plain doc
		if err := json.Unmarshal(b, &plain); err != nil {
			t.Fatalf("strict accepted what encoding/json refuses: %v", err)
		}
	})
}
