package signature

import (
	"crypto/elliptic"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadKeys: key files are parsed strictly; whatever a file holds, the
// loaders return a P-256 key or an error, never a panic or another key.
func FuzzLoadKeys(f *testing.F) {
	dir := f.TempDir()
	priv, pub := filepath.Join(dir, "k"), filepath.Join(dir, "p")
	if err := GenerateKey(priv, pub); err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{priv, pub} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if k, err := LoadPrivateKey(path); err == nil && (k == nil || k.Curve != elliptic.P256()) {
			t.Fatalf("private key accepted: %v", k)
		}
		if k, err := LoadPublicKey(path); err == nil && (k == nil || k.Curve != elliptic.P256()) {
			t.Fatalf("public key accepted: %v", k)
		}
	})
}
