package sidecar

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// jsonNames lists the JSON keys of a struct type, following embedded
// structs as encoding/json does.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			out = append(out, jsonNames(f.Type)...)
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// TestBlobJSONHasEveryField: Blob.MarshalJSON writes every field of a
// Blob, so a field added to Decision reaches the sidecar.
func TestBlobJSONHasEveryField(t *testing.T) {
	got, want := jsonNames(reflect.TypeOf(blobJSON{})), jsonNames(reflect.TypeOf(Blob{}))
	if !slices.Equal(got, want) {
		t.Fatalf("blobJSON writes %v; Blob has %v: add the new field to blobJSON and Blob.MarshalJSON", got, want)
	}
}
