package signature

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
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
	// The key id is sha256 of the DER openssl writes for the public key.
	openssl(t, dir, "pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "pub.der")
	der, _ := os.ReadFile(filepath.Join(dir, "pub.der"))
	if sum := sha256.Sum256(der); Fingerprint(pub) != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("fingerprint %s, openssl DER hashes to %x", Fingerprint(pub), sum)
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
	osslSig, _ := os.ReadFile(filepath.Join(dir, "ossl.der"))
	e.Signature = osslSig
	ossl, _ := json.Marshal(e)
	if err := Verify(sidecar, ossl, pub); err != nil {
		t.Fatalf("openssl signature: %v", err)
	}
}

// SEC1 "EC PRIVATE KEY" files load, including the output of `openssl
// ecparam -genkey`, which puts an "EC PARAMETERS" block first.
func TestLoadSEC1Keys(t *testing.T) {
	dir := opensslKeys(t)
	openssl(t, dir, "ec", "-in", "key.pem", "-out", "sec1.pem")
	openssl(t, dir, "ecparam", "-name", "prime256v1", "-genkey", "-out", "ecparam.pem")
	openssl(t, dir, "ec", "-in", "ecparam.pem", "-pubout", "-out", "ecparam.pub")
	for _, tt := range []struct{ key, pub, block string }{
		{"sec1.pem", "pub.pem", "-----BEGIN EC PRIVATE KEY-----"},
		{"ecparam.pem", "ecparam.pub", "-----BEGIN EC PARAMETERS-----"},
	} {
		raw, _ := os.ReadFile(filepath.Join(dir, tt.key))
		if !bytes.HasPrefix(raw, []byte(tt.block)) {
			t.Fatalf("%s does not start with %s:\n%s", tt.key, tt.block, raw)
		}
		key, err := LoadPrivateKey(filepath.Join(dir, tt.key))
		if err != nil {
			t.Fatalf("%s: %v", tt.key, err)
		}
		pub, err := LoadPublicKey(filepath.Join(dir, tt.pub))
		if err != nil {
			t.Fatal(err)
		}
		env, err := Sign([]byte("x"), key)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify([]byte("x"), env, pub); err != nil {
			t.Fatalf("%s: %v", tt.key, err)
		}
	}
}

// Sign's nonce follows RFC 6979: the P-256/SHA-256 "sample" vector of
// appendix A.2.5 must come out exactly, which is what keeps signed
// archives reproducible.
func TestSignRFC6979Vector(t *testing.T) {
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mustHex(t, "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := Sign([]byte("sample"), key)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(e.Signature, &sig); err != nil || len(rest) != 0 {
		t.Fatalf("signature is not one DER SEQUENCE: %v", err)
	}
	wantR := new(big.Int).SetBytes(mustHex(t, "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"))
	wantS := new(big.Int).SetBytes(mustHex(t, "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"))
	if sig.R.Cmp(wantR) != 0 || sig.S.Cmp(wantS) != 0 {
		t.Fatalf("r=%X s=%X, want the RFC 6979 values", sig.R, sig.S)
	}
	if e.KeyID != Fingerprint(&key.PublicKey) || !strings.HasPrefix(e.KeyID, "sha256:") || len(e.KeyID) != 7+64 {
		t.Fatalf("key id %q", e.KeyID)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	const good = `{"version":"1","algorithm":"ecdsa-p256-sha256","keyId":"sha256:ab","signature":"MEUCIQ=="}`
	tests := []struct {
		name, in, want string
	}{
		{"good", good, ""},
		{"trailing data", good + `{}`, "trailing data"},
		{"duplicate key", strings.Replace(good, `"version":"1"`, `"version":"1","version":"1"`, 1), "version"},
		{"case-folded key", strings.Replace(good, `"keyId"`, `"KeyID"`, 1), "KeyID"},
		{"unknown version", strings.Replace(good, `"version":"1"`, `"version":"2"`, 1), "version \"2\""},
		{"missing version", strings.Replace(good, `"version":"1",`, ``, 1), "version \"\""},
		{"empty signature", strings.Replace(good, `"MEUCIQ=="`, `""`, 1), "0-byte"},
		{"oversized signature", strings.Replace(good, `"MEUCIQ=="`, `"`+strings.Repeat("A", 200)+`"`, 1), "150-byte"},
		{"bad base64", strings.Replace(good, `"MEUCIQ=="`, `"!!"`, 1), "signature"},
		{"not an object", `[]`, "signature"},
		{"too large", good + strings.Repeat(" ", MaxEnvelope), "more than 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Parse([]byte(tt.in))
			if tt.want == "" {
				if err != nil || env.KeyID != "sha256:ab" || len(env.Signature) != 4 {
					t.Fatalf("env %+v, err %v", env, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v", env)
			}
			if fault.KindOf(err, 0) != fault.Integrity || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v (kind %v), want %q and integrity", err, fault.KindOf(err, 0), tt.want)
			}
		})
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
		{"tampered signature", sidecar, flipped, pub, "does not verify", true},
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

func TestNilKeys(t *testing.T) {
	if _, err := Sign([]byte("x"), nil); fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("Sign(nil key): %v", err)
	}
	if err := Verify([]byte("x"), []byte("{}"), nil); fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("Verify(nil key): %v", err)
	}
	if Fingerprint(nil) != "invalid" {
		t.Fatal("nil key has a fingerprint")
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
		{"garbage.pem", "no PEM key block", fault.Usage, false},
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

// TestKeyFlag: no path is no key; a key that does not load names the flag
// and keeps its kind.
func TestKeyFlag(t *testing.T) {
	if k, err := KeyFlag("--verify-key", "", LoadPublicKey); k != nil || err != nil {
		t.Fatalf("empty path: %v, %v", k, err)
	}
	_, err := KeyFlag("--sign-key", filepath.Join(t.TempDir(), "missing.pem"), LoadPrivateKey)
	if !strings.HasPrefix(fmt.Sprint(err), "--sign-key: ") || fault.KindOf(err, 0) != fault.Env {
		t.Fatalf("missing key: %v", err)
	}
	dir := t.TempDir()
	k, p := filepath.Join(dir, "k.pem"), filepath.Join(dir, "p.pem")
	if err := GenerateKey(k, p); err != nil {
		t.Fatal(err)
	}
	if key, err := KeyFlag("--sign-key", k, LoadPrivateKey); key == nil || err != nil {
		t.Fatalf("sign key: %v", err)
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
		if env.Version != Version || env.Algorithm != Algorithm || len(env.Signature) == 0 {
			t.Fatalf("accepted %+v", env)
		}
		// What was accepted re-encodes to an envelope that parses the same.
		again, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		env2, err := Parse(again)
		if err != nil || env2.KeyID != env.KeyID || !bytes.Equal(env2.Signature, env.Signature) {
			t.Fatalf("round trip of %+v: %+v, %v", env, env2, err)
		}
	})
}

// TestGenerateKeyReplace: with replace, an existing pair is replaced by
// a new matching one (private key still 0600), nothing is left beside
// it, and a directory in the way is refused untouched.
func TestGenerateKeyReplace(t *testing.T) {
	dir := t.TempDir()
	k, p := filepath.Join(dir, "k.pem"), filepath.Join(dir, "p.pem")
	if err := GenerateKey(k, p); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(k)
	if err := GenerateKeyTo(k, p, true); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(k); bytes.Equal(now, old) {
		t.Fatal("the private key was not replaced")
	}
	if st, _ := os.Stat(k); st.Mode().Perm() != 0o600 {
		t.Fatalf("replaced private key mode %v", st.Mode())
	}
	key, err := LoadPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := LoadPublicKey(p); err != nil || Fingerprint(pub) != Fingerprint(&key.PublicKey) {
		t.Fatalf("replaced pair does not match: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("%d files in the directory, want the 2 keys", len(ents))
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	before, _ := os.ReadFile(k)
	if err := GenerateKeyTo(k, sub, true); fault.KindOf(err, 0) != fault.Usage {
		t.Fatalf("replaced a directory: %v", err)
	}
	if now, _ := os.ReadFile(k); !bytes.Equal(now, before) {
		t.Fatal("refusing touched the key")
	}
}
