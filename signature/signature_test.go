package signature

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffah/diffah/fault"
)

func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// opensslKeys makes a P-256 key pair with the openssl CLI: PKCS#8 private,
// PKIX public.
func opensslKeys(t *testing.T) (dir string) {
	dir = t.TempDir()
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "raw.pem")
	openssl(t, dir, "pkcs8", "-topk8", "-nocrypt", "-in", "raw.pem", "-out", "key.pem")
	openssl(t, dir, "ec", "-in", "key.pem", "-pubout", "-out", "pub.pem")
	return dir
}

func TestSignVerifyWithOpenSSLKeys(t *testing.T) {
	dir := opensslKeys(t)
	key, err := LoadPrivateKey(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, "pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sidecar := []byte(`{"kind":"diffah-delta"}`)
	env, err := Sign(sidecar, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(sidecar, env, pub); err != nil {
		t.Fatal(err)
	}
	again, _ := Sign(sidecar, key)
	if !bytes.Equal(env, again) {
		t.Fatal("signatures are not deterministic")
	}
	// openssl verifies our signature.
	e, _ := Parse(env)
	os.WriteFile(filepath.Join(dir, "sidecar"), sidecar, 0o644)
	os.WriteFile(filepath.Join(dir, "sig.der"), e.Signature, 0o644)
	openssl(t, dir, "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "sidecar")
	// and we verify openssl's.
	openssl(t, dir, "dgst", "-sha256", "-sign", "key.pem", "-out", "ossl.der", "sidecar")
	der, _ := os.ReadFile(filepath.Join(dir, "ossl.der"))
	e.Signature = der
	ossl, _ := json.Marshal(e)
	if err := Verify(sidecar, ossl, pub); err != nil {
		t.Fatalf("openssl signature: %v", err)
	}
	// SEC1 "EC PRIVATE KEY" works too.
	if _, err := LoadPrivateKey(filepath.Join(dir, "raw.pem")); err != nil {
		openssl(t, dir, "ec", "-in", "key.pem", "-out", "sec1.pem")
		if _, err := LoadPrivateKey(filepath.Join(dir, "sec1.pem")); err != nil {
			t.Fatalf("SEC1 key: %v", err)
		}
	}
}

func TestVerifyFailures(t *testing.T) {
	dir := opensslKeys(t)
	key, _ := LoadPrivateKey(filepath.Join(dir, "key.pem"))
	pub, _ := LoadPublicKey(filepath.Join(dir, "pub.pem"))
	other := t.TempDir()
	if err := GenerateKey(filepath.Join(other, "k"), filepath.Join(other, "p")); err != nil {
		t.Fatal(err)
	}
	otherPub, _ := LoadPublicKey(filepath.Join(other, "p"))
	sidecar := []byte(`{"kind":"diffah-delta","x":1}`)
	env, _ := Sign(sidecar, key)
	var e Envelope
	json.Unmarshal(env, &e)
	e.Signature[len(e.Signature)-1] ^= 1
	flipped, _ := json.Marshal(e)
	tests := []struct {
		name     string
		sc, env  []byte
		pub      any
		want     string
		mismatch bool
	}{
		{"wrong key", sidecar, env, otherPub, "expected sha256:", true},
		{"tampered sidecar", []byte(`{"kind":"diffah-delta","x":2}`), env, pub, "tampered", true},
		{"tampered signature", sidecar, flipped, pub, "", false},
		{"garbage envelope", sidecar, []byte("nope"), pub, "signature:", false},
		{"unknown algorithm", sidecar, bytes.Replace(env, []byte(Algorithm), []byte("rsa-pss"), 1), pub, "not supported", false},
		{"unknown field", sidecar, bytes.Replace(env, []byte(`"version"`), []byte(`"extra":1,"version"`), 1), pub, "unknown field", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pub
			if tt.pub != nil {
				p = tt.pub.(*ecdsa.PublicKey)
			}
			err := Verify(tt.sc, tt.env, p)
			if err == nil {
				t.Fatal("verified")
			}
			if fault.KindOf(err, 0) != fault.Signature {
				t.Fatalf("kind %v: %v", fault.KindOf(err, 0), err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v lacks %q", err, tt.want)
			}
			if tt.mismatch && !errors.Is(err, ErrMismatch) {
				t.Fatalf("not ErrMismatch: %v", err)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	dir := t.TempDir()
	openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p384.pem")
	openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa.pem")
	openssl(t, dir, "pkcs8", "-topk8", "-in", "p384.pem", "-out", "enc.pem", "-passout", "pass:x")
	openssl(t, dir, "pkey", "-in", "rsa.pem", "-pubout", "-out", "rsapub.pem")
	os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("hello"), 0o644)
	tests := []struct {
		file, want string
		kind       fault.Kind
		pub        bool
	}{
		{"p384.pem", "P-384", fault.Usage, false},
		{"rsa.pem", "not an ECDSA", fault.Usage, false},
		{"enc.pem", "encrypted", fault.Usage, false},
		{"garbage.pem", "no PEM block", fault.Usage, false},
		{"missing.pem", "no such file", fault.Env, false},
		{"rsapub.pem", "not an ECDSA", fault.Usage, true},
		{"p384.pem", "not a public key", fault.Usage, true},
	}
	for _, tt := range tests {
		var err error
		if tt.pub {
			_, err = LoadPublicKey(filepath.Join(dir, tt.file))
		} else {
			_, err = LoadPrivateKey(filepath.Join(dir, tt.file))
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || fault.KindOf(err, 0) != tt.kind {
			t.Errorf("%s (pub=%v): err = %v, want %q kind %v", tt.file, tt.pub, err, tt.want, tt.kind)
		}
		if tt.file == "enc.pem" && fault.HintOf(err) == "" {
			t.Error("encrypted key error has no hint")
		}
	}
}

func TestGenerateKey(t *testing.T) {
	dir := t.TempDir()
	k, p := filepath.Join(dir, "k.pem"), filepath.Join(dir, "p.pem")
	if err := GenerateKey(k, p); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(k)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
	if err := GenerateKey(k, filepath.Join(dir, "other.pem")); fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("overwrote: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.pem")); err == nil {
		t.Fatal("left a public key behind after refusing")
	}
	key, err := LoadPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := LoadPublicKey(p)
	if Fingerprint(pub) != Fingerprint(&key.PublicKey) {
		t.Fatal("pair does not match")
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		openssl(t, dir, "pkey", "-in", "k.pem", "-noout")
		openssl(t, dir, "pkey", "-pubin", "-in", "p.pem", "-noout")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":"1","algorithm":"ecdsa-p256-sha256","keyId":"sha256:00","signature":"MEUCIQ=="}`))
	f.Add([]byte(`{"version":"1","version":"1"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := Parse(b)
		if err != nil {
			if fault.KindOf(err, 0) != fault.Integrity {
				t.Fatalf("kind: %v", err)
			}
			return
		}
		if env.Version != Version || env.Algorithm != Algorithm {
			t.Fatalf("accepted %+v", env)
		}
	})
}
