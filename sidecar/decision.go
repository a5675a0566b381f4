package sidecar

import (
	"encoding/json"

	"github.com/opencontainers/go-digest"
)

// Decision is how the consumer gets one blob of a target image, and why:
// the one record plan makes (plan.Blob), pack revises (pack/decision.go)
// and the sidecar carries (Blob). P is the patch as far as it is known:
// a PatchSpec in a plan, a PatchRef (which adds the payload's entry) in a
// sidecar. A plan writes the fields in this order; Blob.MarshalJSON
// writes a sidecar's in the order of its format.
type Decision[P PatchSpec | PatchRef] struct {
	// Action is Ship, Reuse or Patch.
	Action string `json:"action"`
	// Reason says, for people, why the action was chosen.
	Reason string `json:"reason"`
	// ReasonCode is the same for programs (plan 1.1, sidecar 1.2).
	ReasonCode ReasonCode `json:"reasonCode,omitempty"`
	// Patch says how to rebuild the blob (Action Patch).
	Patch *P `json:"patch,omitempty"`
	// From names, for a reused blob, the bundle image whose baseline holds
	// it, when that is not this image's own (sidecar 1.1). plan never sets
	// it; pack does, when the images of a bundle draw on each other's
	// baselines.
	From string `json:"from,omitempty"`
	// Recipe, on a reused layer, reproduces its compression
	// (recompress.Recipe; plan 1.1, sidecar 1.2), so a baseline that holds
	// the layer only uncompressed (a container engine, a docker save
	// archive) can rebuild the blob from the layer with the same diffID.
	// Readers of sidecar 1.1 ignore it and need the blob itself.
	Recipe json.RawMessage `json:"recipe,omitempty"`
}

// WithPatch returns d with patch in place of its patch: how a plan's
// decision becomes a sidecar's.
func WithPatch[Q, P PatchSpec | PatchRef](d Decision[P], patch *Q) Decision[Q] {
	return Decision[Q]{Action: d.Action, Reason: d.Reason, ReasonCode: d.ReasonCode, Patch: patch, From: d.From, Recipe: d.Recipe}
}

// MarshalJSON writes a blob with its fields in the order of format 1.x,
// where the entry and the patch come before the reason (and an empty
// reason is left out), so sidecars stay byte for byte what they were.
func (b Blob) MarshalJSON() ([]byte, error) {
	return json.Marshal(blobJSON{Descriptor: b.Descriptor, Role: b.Role, DiffID: b.DiffID, Action: b.Action, Entry: b.Entry,
		Patch: b.Patch, Reason: b.Reason, ReasonCode: b.ReasonCode, From: b.From, Recipe: b.Recipe})
}

// blobJSON is Blob as format 1.x lays it out. A field added to Decision
// is added here too (TestBlobJSONHasEveryField).
type blobJSON struct {
	Descriptor
	Role       string          `json:"role"`
	DiffID     digest.Digest   `json:"diffID,omitempty"`
	Action     string          `json:"action"`
	Entry      string          `json:"entry,omitempty"`
	Patch      *PatchRef       `json:"patch,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	ReasonCode ReasonCode      `json:"reasonCode,omitempty"`
	From       string          `json:"from,omitempty"`
	Recipe     json.RawMessage `json:"recipe,omitempty"`
}
