package unpack

import (
	"bytes"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/sidecar"
)

// TestHeadConfigs: the shipped config that follows the sidecar is
// returned, checked against its digest; an altered one is refused.
func TestHeadConfigs(t *testing.T) {
	a := archive(t)
	res, configs, err := HeadConfigs(bytes.NewReader(a), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var cd digest.Digest
	for _, b := range res.Sidecar.Images[0].Blobs {
		if b.Role == sidecar.RoleConfig {
			cd = b.Digest
		}
	}
	if raw, ok := configs[cd]; !ok || digest.FromBytes(raw) != cd || len(configs) != 1 {
		t.Fatalf("configs %v, want only %s", configs, cd)
	}
	// Flip a byte of the config (the last entry's data, before the
	// end-of-archive blocks).
	bad := append([]byte{}, a...)
	i := bytes.LastIndex(bad, []byte(`"diff_ids":[]`))
	bad[i+1] ^= 0x20
	if _, _, err := HeadConfigs(bytes.NewReader(bad), Options{}); fault.KindOf(err, 0) != fault.Integrity {
		t.Fatalf("an altered config: %v", err)
	}
}

// FuzzHeadConfigs: arbitrary bytes fail cleanly (integrity or
// environment) or give configs that match their digests.
func FuzzHeadConfigs(f *testing.F) {
	a := archive(f)
	f.Add(a)
	f.Add(a[:1500])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, configs, err := HeadConfigs(bytes.NewReader(data), Options{})
		if err != nil {
			if k := fault.KindOf(err, 0); k != fault.Integrity && k != fault.Env {
				t.Fatalf("kind %v: %v", k, err)
			}
			return
		}
		for d, raw := range configs {
			if digest.FromBytes(raw) != d {
				t.Fatalf("config %s does not match its digest", d)
			}
		}
	})
}
