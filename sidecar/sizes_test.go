package sidecar

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/layout"
)

// hostileSizes are sizes no real blob has: every place a sidecar states a
// size must refuse them at parse time (they would overflow the verifying
// reader or inspect's totals).
var hostileSizes = []int64{-1, math.MinInt64, math.MaxInt64, math.MaxInt64 - 1, layout.MaxBlobSize + 1, 1 << 62}

// TestParseRefusesHostileSizes sets each size field of the sidecar to each
// hostile size (keeping the entry list consistent, so only the range check
// can refuse it).
func TestParseRefusesHostileSizes(t *testing.T) {
	fields := map[string]func(s *Sidecar, n int64){
		"entry":       func(s *Sidecar, n int64) { s.Entries[1].Size, s.Images[0].Blobs[2].Size = n, n },
		"patch-entry": func(s *Sidecar, n int64) { s.Entries[2].Size = n },
		"manifest": func(s *Sidecar, n int64) {
			s.Entries[0].Size, s.Images[0].Blobs[0].Size, s.Images[0].Target.Manifest.Size = n, n, n
		},
		"reused-config":    func(s *Sidecar, n int64) { s.Images[0].Blobs[1].Size = n },
		"patched-layer":    func(s *Sidecar, n int64) { s.Images[0].Blobs[3].Size = n },
		"uncompressedSize": func(s *Sidecar, n int64) { s.Images[0].Blobs[3].Patch.UncompressedSize = n },
		"patch-source":     func(s *Sidecar, n int64) { s.Images[0].Blobs[3].Patch.Sources[0].Size = n },
	}
	for name, set := range fields {
		for _, n := range hostileSizes {
			s := valid()
			set(s, n)
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseBytes(b)
			if err == nil || fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "size") {
				t.Errorf("%s = %d: got %v, want an integrity error about the size", name, n, err)
			}
		}
		// The largest allowed size still parses.
		s := valid()
		set(s, layout.MaxBlobSize)
		b, _ := json.Marshal(s)
		if _, err := ParseBytes(b); err != nil {
			t.Errorf("%s = MaxBlobSize: %v", name, err)
		}
	}
}

// TestParseRefusesDigestsAsPaths: digests that would become paths go
// through layout.CheckDigest, whatever field holds them.
func TestParseRefusesDigestsAsPaths(t *testing.T) {
	for _, bad := range []string{"sha256:../../x", "sha256", "", "sha256:" + strings.Repeat("A", 64), "md5:" + strings.Repeat("a", 32), "sha256:" + strings.Repeat("a", 63)} {
		for name, set := range map[string]func(s *Sidecar){
			"entry":         func(s *Sidecar) { s.Entries[2].Digest = digestOf(bad) },
			"config":        func(s *Sidecar) { s.Images[0].Blobs[1].Digest = digestOf(bad) },
			"diffID":        func(s *Sidecar) { s.Images[0].Blobs[3].DiffID = digestOf(bad + "x") },
			"source":        func(s *Sidecar) { s.Images[0].Blobs[3].Patch.Sources[0].Digest = digestOf(bad) },
			"source-diffID": func(s *Sidecar) { s.Images[0].Blobs[3].Patch.Sources[0].DiffID = digestOf(bad) },
			"baseline":      func(s *Sidecar) { s.Images[0].Baseline.ManifestDigest = digestOf(bad + "y") },
			"target-index":  func(s *Sidecar) { s.Images[0].Target.IndexDigest = digestOf(bad + "z") },
		} {
			s := valid()
			set(s)
			b, _ := json.Marshal(s)
			if _, err := ParseBytes(b); err == nil || fault.KindOf(err, 0) != fault.Integrity {
				t.Errorf("%s = %q: got %v, want an integrity error", name, bad, err)
			}
		}
	}
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
