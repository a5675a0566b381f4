package sidecar

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

// withCosts is valid() with file costs on its patched layer (whose entry
// is 300 bytes).
func withCosts() *Sidecar {
	s := valid()
	s.Images[0].Blobs[3].FileCosts = &FileCosts{
		Files: []FileCost{
			{Path: "usr/lib/libssl.so.3", OldSize: 4000, Size: 4100, Encoding: "adiff+delta", Bytes: 200},
			{Path: "etc/new.conf", Size: 90, Encoding: "lit", Bytes: 40, Estimated: true},
		},
		Copied: 12, CopiedBytes: 20, Unlisted: 1, UnlistedBytes: 10, OtherBytes: 30,
	}
	s.SetVersion()
	return s
}

func TestFileCostsRoundTripAndVersion(t *testing.T) {
	s := withCosts()
	if s.Version != "1.4" {
		t.Fatalf("version %s, want 1.4 (fileCosts)", s.Version)
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if fc := got.Images[0].Blobs[3].FileCosts; fc == nil || len(fc.Files) != 2 || fc.Total() != 300 {
		t.Fatalf("file costs lost: %+v", fc)
	}
	// The seed for FuzzParse, kept in step with the format.
	if os.Getenv("DIFFAH_UPDATE_SEEDS") != "" {
		if err := os.WriteFile(filepath.Join("testdata", "seeds", "filecosts.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A 1.2 sidecar without the field still parses and stays 1.2.
	v := valid()
	v.Images[0].Blobs[3].Patch.Codec = "diffah-tar/2"
	v.SetVersion()
	if v.Version != "1.2" {
		t.Fatalf("version %s without fileCosts, want 1.2", v.Version)
	}
}

// A reader of 1.2 (which knows no fileCosts) reads a 1.4 sidecar: the
// newer minor version's unknown field is ignored, not refused.
func TestFileCostsIgnoredByOlderMinor(t *testing.T) {
	b, err := withCosts().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	old := strings.Replace(string(b), `"fileCosts"`, `"fileCostsOfTheFuture"`, 1)
	old = strings.Replace(old, `"version": "1.4"`, `"version": "1.9"`, 1)
	if _, err := ParseBytes([]byte(old)); err != nil {
		t.Fatalf("a newer minor version's unknown field refused: %v", err)
	}
	same := strings.Replace(string(b), `"fileCosts"`, `"fileCostsOfTheFuture"`, 1)
	if _, err := ParseBytes([]byte(same)); err == nil {
		t.Fatal("an unknown field within a known version accepted")
	}
}

func TestFileCostsRefused(t *testing.T) {
	cases := map[string]func(s *Sidecar){
		"not costliest first": func(s *Sidecar) {
			fc := s.Images[0].Blobs[3].FileCosts
			fc.Files[0], fc.Files[1] = fc.Files[1], fc.Files[0]
		},
		"bad encoding": func(s *Sidecar) { s.Images[0].Blobs[3].FileCosts.Files[0].Encoding = "DELTA; rm -rf" },
		"empty path":   func(s *Sidecar) { s.Images[0].Blobs[3].FileCosts.Files[1].Path = "" },
		"negative bytes": func(s *Sidecar) {
			fc := s.Images[0].Blobs[3].FileCosts
			fc.Files[1].Bytes, fc.OtherBytes = -1, fc.OtherBytes+41
		},
		"huge size":         func(s *Sidecar) { s.Images[0].Blobs[3].FileCosts.Files[0].Size = 1 << 62 },
		"negative count":    func(s *Sidecar) { s.Images[0].Blobs[3].FileCosts.Copied = -1 },
		"on a shipped blob": func(s *Sidecar) { s.Images[0].Blobs[2].FileCosts = &FileCosts{} },
		"too many files": func(s *Sidecar) {
			fc := s.Images[0].Blobs[3].FileCosts
			for range MaxFileCosts {
				fc.Files = append(fc.Files, FileCost{Path: "x", Encoding: "lit"})
			}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s := withCosts()
			mutate(s)
			err := s.Validate()
			if err == nil || fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), "fileCosts") {
				t.Fatalf("got %v", err)
			}
		})
	}
}
