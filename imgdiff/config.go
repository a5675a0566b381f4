package imgdiff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
)

// noiseKeys are annotation and label keys that name or date an image rather
// than describe its content; semantic mode ignores them.
var noiseKeys = map[string]bool{
	"org.opencontainers.image.created":   true,
	layout.RefNameAnnotation:             true,
	"org.opencontainers.image.base.name": true,
	"io.containerd.image.name":           true,
	"org.label-schema.build-date":        true,
}

func withoutNoise(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if !noiseKeys[k] {
			out[k] = v
		}
	}
	return out
}

// compareManifests reports manifest field differences. Layer descriptors are
// left to compareLayers. Semantic mode keeps only annotations that are not
// noise: media types and the config descriptor change with compression and
// timestamps.
func compareManifests(m0, m1 *v1.Manifest, semantic bool) []Change {
	if semantic {
		return mapChanges(TypeManifest, NoLayer, "annotations.", withoutNoise(m0.Annotations), withoutNoise(m1.Annotations))
	}
	subject := func(m *v1.Manifest) string {
		if m.Subject == nil {
			return "-"
		}
		return m.Subject.Digest.String()
	}
	fields := []struct{ name, v0, v1 string }{
		{"schemaVersion", fmt.Sprint(m0.SchemaVersion), fmt.Sprint(m1.SchemaVersion)},
		{"mediaType", string(m0.MediaType), string(m1.MediaType)},
		{"config.mediaType", string(m0.Config.MediaType), string(m1.Config.MediaType)},
		{"config.digest", m0.Config.Digest.String(), m1.Config.Digest.String()},
		{"config.size", fmt.Sprint(m0.Config.Size), fmt.Sprint(m1.Config.Size)},
		{"layers", fmt.Sprint(len(m0.Layers)), fmt.Sprint(len(m1.Layers))},
		{"subject", subject(m0), subject(m1)},
	}
	var out []Change
	for _, f := range fields {
		if f.v0 != f.v1 {
			out = append(out, Change{Type: TypeManifest, Layer: NoLayer, Name: f.name, Input0: f.v0, Input1: f.v1, Detail: DetailChanged})
		}
	}
	return append(out, mapChanges(TypeManifest, NoLayer, "annotations.", m0.Annotations, m1.Annotations)...)
}

// semanticConfig lists the config fields that change how a container runs.
var semanticConfig = map[string]bool{
	"Env": true, "Cmd": true, "Entrypoint": true, "WorkingDir": true, "User": true,
	"ExposedPorts": true, "Volumes": true, "Labels": true, "StopSignal": true,
	"Shell": true, "Healthcheck": true, "OnBuild": true,
}

var semanticTop = map[string]bool{"architecture": true, "os": true, "os.version": true, "variant": true}

// compareConfigs compares two raw config files field by field, by JSON path.
// rootfs is left out: strict mode reports diffIDs per layer, and semantic
// mode ignores layer boundaries.
func compareConfigs(raw0, raw1 []byte, semantic bool) ([]Change, error) {
	var leaves [2]map[string]string
	for i, raw := range [][]byte{raw0, raw1} {
		var doc map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		err := d.Decode(&doc)
		if err == nil && doc == nil {
			err = errors.New("null")
		}
		if err == nil {
			if _, tail := d.Token(); tail != io.EOF {
				err = errors.New("trailing data after the object")
			}
		}
		if err != nil {
			return nil, fault.Errorf(fault.Integrity, "imgdiff: input-%d: config is not a JSON object: %w", i, err)
		}
		delete(doc, "rootfs")
		if semantic {
			doc = semanticView(doc)
		}
		leaves[i] = map[string]string{}
		flattenJSON(leaves[i], "", doc)
	}
	pruneEmptyObjects(leaves[0], leaves[1])
	pruneEmptyObjects(leaves[1], leaves[0])
	return mapChanges(TypeConfig, NoLayer, "", leaves[0], leaves[1]), nil
}

// pruneEmptyObjects drops a's "{}" leaves where b has fields below the same
// key: `"config": {}` growing an Env is the Env being added, not the empty
// object being removed.
func pruneEmptyObjects(a, b map[string]string) {
	for k, v := range a {
		if v != "{}" {
			continue
		}
		for bk := range b {
			if strings.HasPrefix(bk, k+".") || strings.HasPrefix(bk, k+"[") {
				delete(a, k)
				break
			}
		}
	}
}

// semanticView keeps the fields that matter at run time, treating null and
// empty values as absent (builders disagree on `"Cmd": null` versus no Cmd).
func semanticView(doc map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range doc {
		if semanticTop[k] && !isEmpty(v) {
			out[k] = v
		}
	}
	cfg, _ := doc["config"].(map[string]any)
	kept := map[string]any{}
	for k, v := range cfg {
		if !semanticConfig[k] || isEmpty(v) {
			continue
		}
		if k == "Labels" {
			if labels, ok := v.(map[string]any); ok {
				l := map[string]any{}
				for lk, lv := range labels {
					if !noiseKeys[lk] {
						l[lk] = lv
					}
				}
				if len(l) == 0 {
					continue
				}
				v = l
			}
		}
		kept[k] = v
	}
	if len(kept) > 0 {
		out["config"] = kept
	}
	return out
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case []any:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	}
	return false
}

// flattenJSON writes the leaves of v into out keyed by dotted path. Objects
// are descended into, Env lists become maps by variable name, arrays holding
// objects (history) are indexed, and other arrays stay whole values: a
// command is one value, not a list of words. Non-empty strings appear
// unquoted.
func flattenJSON(out map[string]string, key string, v any) {
	join := func(k string) string {
		if key == "" {
			return k
		}
		return key + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 && key != "" {
			out[key] = "{}"
		}
		// Sorted, so that when two paths flatten to one name (a key
		// "config.Env" beside config.Env) the same one wins every time.
		for _, k := range slices.Sorted(maps.Keys(t)) {
			flattenJSON(out, join(k), t[k])
		}
		return
	case []any:
		if strings.HasSuffix(key, ".Env") || key == "Env" {
			for _, item := range t {
				s, ok := item.(string)
				if !ok {
					continue
				}
				name, val, ok := strings.Cut(s, "=")
				switch {
				case !ok:
					val = "(no =)"
				case val == "":
					val = `""`
				}
				out[join(name)] = val
			}
			return
		}
		for _, item := range t {
			if _, ok := item.(map[string]any); ok {
				for i, c := range t {
					flattenJSON(out, fmt.Sprintf("%s[%d]", key, i), c)
				}
				return
			}
		}
	case string:
		if t != "" {
			out[key] = t
			return
		}
		// An empty string is shown quoted, so it cannot be read as absent ("-").
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Values decoded from JSON always marshal back.
		b = []byte(fmt.Sprint(v))
	}
	out[key] = string(b)
}
