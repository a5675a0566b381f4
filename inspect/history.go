package inspect

import (
	"encoding/json"
	"strings"
)

// AddHistory fills in what each layer of image name is — its config
// history's created_by, shortened — from the image's raw config. A
// config without history (or with fewer entries than layers) leaves the
// rest blank.
func (d *Doc) AddHistory(name string, rawConfig []byte) {
	var cfg struct {
		History []struct {
			CreatedBy  string `json:"created_by"`
			EmptyLayer bool   `json:"empty_layer"`
		} `json:"history"`
	}
	if json.Unmarshal(rawConfig, &cfg) != nil {
		return
	}
	var made []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			made = append(made, ShortCommand(h.CreatedBy))
		}
	}
	for i := range d.Images {
		if d.Images[i].Name != name {
			continue
		}
		n := 0
		for j := range d.Images[i].Blobs {
			b := &d.Images[i].Blobs[j]
			if b.Role != "layer" {
				continue
			}
			if n < len(made) {
				b.CreatedBy = made[n]
			}
			n++
		}
	}
}

// ShortCommand shortens a created_by for a table: without the shell
// prefix Docker adds, on one line, at most 60 characters.
func ShortCommand(s string) string {
	s = strings.TrimPrefix(s, "/bin/sh -c ")
	s = strings.TrimPrefix(s, "#(nop) ")
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:59]) + "…"
	}
	return s
}
