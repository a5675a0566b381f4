// Package strictjson decodes JSON documents that come from untrusted
// media (sidecars, plans, signature envelopes) more strictly than
// encoding/json does: object keys must match field names exactly (not
// case-insensitively), no key may appear twice (a classic way to make two
// parsers see two different documents), nesting is bounded, and exactly
// one value may be present.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// MaxDepth bounds nesting of objects and arrays.
const MaxDepth = 32

var rawType = reflect.TypeOf(json.RawMessage(nil))

// Unmarshal decodes data into v. With allowUnknown, keys that name no
// field are skipped (a newer minor version may add fields); otherwise
// they are errors.
func Unmarshal(data []byte, v any, allowUnknown bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, reflect.TypeOf(v), allowUnknown, 0, "$"); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if !allowUnknown {
		d.DisallowUnknownFields()
	}
	return d.Decode(v)
}

func walk(dec *json.Decoder, t reflect.Type, allowUnknown bool, depth int, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	delim, isDelim := tok.(json.Delim)
	if !isDelim {
		return nil
	}
	if depth >= MaxDepth {
		return fmt.Errorf("%s: nested deeper than %d levels", path, MaxDepth)
	}
	if t == rawType {
		t = nil
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t != rawType {
			elem = t.Elem()
			if elem.Kind() == reflect.Uint8 {
				elem = nil
			}
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, allowUnknown, depth+1, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	case '{':
		fields := map[string]reflect.Type{}
		isStruct := t != nil && t.Kind() == reflect.Struct
		var mapElem reflect.Type
		if t != nil && t.Kind() == reflect.Map {
			mapElem = t.Elem()
		}
		if isStruct {
			collect(t, fields)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			key := kt.(string)
			if seen[key] {
				return fmt.Errorf("%s: key %q appears twice", path, key)
			}
			seen[key] = true
			var ft reflect.Type
			switch {
			case isStruct:
				var ok bool
				if ft, ok = fields[key]; !ok && !allowUnknown {
					return fmt.Errorf("%s: unknown field %q", path, key)
				}
			case mapElem != nil:
				ft = mapElem
			}
			if err := walk(dec, ft, allowUnknown, depth+1, path+"."+key); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	return nil
}

// collect maps JSON names to field types, following embedded structs the
// way encoding/json does.
func collect(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				collect(et, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = ft
	}
}
