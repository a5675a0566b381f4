package sidecar

import "strings"

// ReasonCode says, for programs, why a blob got its action: a stable
// string beside Reason, the text for people (plan format 1.1, sidecar
// format 1.2). Code branches on the code, never on Reason's text.
type ReasonCode string

const (
	// ReasonManifest: the manifest always travels (ship).
	ReasonManifest ReasonCode = "manifest"
	// ReasonInBaseline: the baseline holds the blob (reuse).
	ReasonInBaseline ReasonCode = "in-baseline"
	// ReasonInBundleBaseline: another bundle image's baseline holds it
	// (reuse, with From).
	ReasonInBundleBaseline ReasonCode = "in-bundle-baseline"
	// ReasonNotInBaseline: a new blob shipped whole, no patch tried
	// (configs, intra-layer deltas off, no baseline).
	ReasonNotInBaseline ReasonCode = "not-in-baseline"
	// ReasonBaselineManifestOnly: ships whole; only the baseline's
	// manifest is known (--baseline-manifest), so nothing to patch from.
	ReasonBaselineManifestOnly ReasonCode = "baseline-manifest-only"
	// ReasonNotPatchable: ships whole; its media type is not a tar diffah
	// patches.
	ReasonNotPatchable ReasonCode = "not-patchable"
	// ReasonNoPatchSource: ships whole; the baseline has no layer to
	// patch from.
	ReasonNoPatchSource ReasonCode = "no-patch-source"
	// ReasonNotReproducible: ships whole; its compressed blob cannot be
	// reproduced, so a patch could not rebuild it.
	ReasonNotReproducible ReasonCode = "not-reproducible"
	// ReasonPatched: rebuilt from a patch (patch).
	ReasonPatched ReasonCode = "patched"
	// ReasonPatchNotSmaller: ships whole; the computed patch was not
	// smaller than the blob.
	ReasonPatchNotSmaller ReasonCode = "patch-not-smaller"
	// ReasonShippedByBundle: ships whole; another image of the bundle
	// ships the same layer whole, so a patch would only add bytes.
	ReasonShippedByBundle ReasonCode = "shipped-by-bundle"
)

// LegacyReasonCode is the one adapter for plans and sidecars written
// before the code existed (plan 1.0, sidecar 1.0 and 1.1): it returns
// code when set, and otherwise the one code programs need from those
// files, read from the producer's text.
func LegacyReasonCode(code ReasonCode, reason string) ReasonCode {
	if code != "" {
		return code
	}
	if strings.Contains(reason, "cannot be reproduced") {
		return ReasonNotReproducible
	}
	return ""
}
