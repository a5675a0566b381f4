// Package signature signs and verifies delta archives. The producer signs
// the sidecar bytes (diffah.json), which pin the sha256 of every other
// entry, so one signature covers the whole archive; the envelope travels
// as the tar entry right after the sidecar, so pipes keep working.
//
// Keys are ECDSA P-256: private keys in unencrypted PKCS#8 PEM (as
// `openssl pkcs8 -topk8 -nocrypt` writes them) or SEC1 "EC PRIVATE KEY"
// PEM; public keys in PKIX PEM (as `openssl ec -pubout` writes them).
// Signatures are ASN.1 DER over sha256(sidecar), the form `openssl dgst
// -sha256 -sign` produces, and are deterministic (RFC 6979), so a signed
// archive is as reproducible as an unsigned one.
package signature

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/diffah/diffah/fault"
	"github.com/diffah/diffah/internal/strictjson"
)

const (
	// EntryName is the archive entry holding the envelope.
	EntryName = "diffah.json.sig"
	// Version and Algorithm are what this package writes and accepts.
	Version   = "1"
	Algorithm = "ecdsa-p256-sha256"
	// MaxEnvelope bounds the envelope read from untrusted media.
	MaxEnvelope = 64 << 10
)

// Envelope is the JSON content of the signature entry.
type Envelope struct {
	Version   string `json:"version"`
	Algorithm string `json:"algorithm"`
	// KeyID is "sha256:" + hex(sha256(DER SubjectPublicKeyInfo)).
	KeyID string `json:"keyId"`
	// Signature is ASN.1 DER ECDSA over sha256(sidecar bytes).
	Signature []byte `json:"signature"`
}

// LoadPrivateKey reads a P-256 private key from a PEM file.
func LoadPrivateKey(path string) (*ecdsa.PrivateKey, error) {
	blk, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	var key any
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fault.WithHint(fault.Errorf(fault.Usage, "%s: the private key is encrypted", path), fault.Usage,
			"decrypt it: openssl pkcs8 -topk8 -nocrypt -in "+path+" -out plain.pem")
	default:
		return nil, fault.Errorf(fault.Usage, "%s: PEM block %q is not a private key (want PRIVATE KEY)", path, blk.Type)
	}
	if err != nil {
		return nil, fault.Errorf(fault.Usage, "%s: %w", path, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fault.Errorf(fault.Usage, "%s: a %T, not an ECDSA P-256 key (make one with `diffah keygen`)", path, key)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fault.Errorf(fault.Usage, "%s: ECDSA key on %s, want P-256", path, ec.Curve.Params().Name)
	}
	return ec, nil
}

// LoadPublicKey reads a P-256 public key from a PKIX PEM file.
func LoadPublicKey(path string) (*ecdsa.PublicKey, error) {
	blk, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	if blk.Type != "PUBLIC KEY" {
		return nil, fault.Errorf(fault.Usage, "%s: PEM block %q is not a public key (want PUBLIC KEY, as `openssl ec -pubout` writes)", path, blk.Type)
	}
	key, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fault.Errorf(fault.Usage, "%s: %w", path, err)
	}
	ec, ok := key.(*ecdsa.PublicKey)
	if !ok {
		return nil, fault.Errorf(fault.Usage, "%s: a %T, not an ECDSA P-256 public key", path, key)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fault.Errorf(fault.Usage, "%s: ECDSA key on %s, want P-256", path, ec.Curve.Params().Name)
	}
	return ec, nil
}

// KeyFlag loads the key a flag names (--sign-key: LoadPrivateKey,
// --verify-key: LoadPublicKey): none when path is empty; an error is
// prefixed with the flag.
func KeyFlag[K any](flag, path string, load func(string) (K, error)) (K, error) {
	var none K
	if path == "" {
		return none, nil
	}
	k, err := load(path)
	if err != nil {
		return none, fmt.Errorf("%s: %w", flag, err)
	}
	return k, nil
}

// readPEM returns the first PEM block of path that is not "EC
// PARAMETERS": `openssl ecparam -genkey` writes the curve parameters ahead
// of the key, and the curve is checked on the key itself anyway.
func readPEM(path string) (*pem.Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.Errorf(fault.Env, "reading key: %w", err)
	}
	for {
		blk, rest := pem.Decode(b)
		if blk == nil {
			return nil, fault.Errorf(fault.Usage, "%s: no PEM key block found (want a PEM file as openssl or `diffah keygen` writes)", path)
		}
		if blk.Type != "EC PARAMETERS" {
			return blk, nil
		}
		b = rest
	}
}

// Fingerprint names a public key: "sha256:" + hex of its PKIX DER.
// A key that cannot be encoded (nil, or not on a named curve) gets
// "invalid", which matches no envelope's key id.
func Fingerprint(pub *ecdsa.PublicKey) string {
	if pub == nil {
		return "invalid"
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "invalid"
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Sign returns the envelope for sidecar. The signature is deterministic:
// with a nil random source, PrivateKey.Sign derives its nonce from the key
// and message (RFC 6979), so the same archive signs to the same bytes.
func Sign(sidecar []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, fault.Errorf(fault.Usage, "signing: want an ECDSA P-256 private key")
	}
	sum := sha256.Sum256(sidecar)
	sig, err := key.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		return nil, fault.Errorf(fault.Internal, "signing the sidecar: %w", err)
	}
	env := Envelope{Version: Version, Algorithm: Algorithm, KeyID: Fingerprint(&key.PublicKey), Signature: sig}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fault.Errorf(fault.Internal, "encoding the signature envelope: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse reads an envelope strictly.
func Parse(envelope []byte) (*Envelope, error) {
	if len(envelope) > MaxEnvelope {
		return nil, fault.Errorf(fault.Integrity, "signature: envelope is %d bytes, more than %d", len(envelope), MaxEnvelope)
	}
	var env Envelope
	if err := strictjson.Unmarshal(envelope, &env, false); err != nil {
		return nil, fault.Errorf(fault.Integrity, "signature: %w", err)
	}
	if env.Version != Version {
		return nil, fault.Errorf(fault.Integrity, "signature: envelope version %q is not supported (this diffah reads %q)", env.Version, Version)
	}
	if env.Algorithm != Algorithm {
		return nil, fault.Errorf(fault.Integrity, "signature: algorithm %q is not supported (want %s)", env.Algorithm, Algorithm)
	}
	if len(env.Signature) == 0 || len(env.Signature) > 80 {
		return nil, fault.Errorf(fault.Integrity, "signature: %d-byte signature is not a P-256 DER signature", len(env.Signature))
	}
	return &env, nil
}

// ErrMismatch is wrapped by Verify's failures.
var ErrMismatch = errors.New("signature mismatch")

// Verify checks that envelope signs sidecar with pub.
func Verify(sidecar, envelope []byte, pub *ecdsa.PublicKey) error {
	if pub == nil || pub.Curve != elliptic.P256() {
		return fault.Errorf(fault.Usage, "signature: want an ECDSA P-256 public key to verify with")
	}
	env, err := Parse(envelope)
	if err != nil {
		// Under --verify-key a malformed envelope is a signature failure,
		// not a corrupt archive: report it in that category.
		return fault.Errorf(fault.Signature, "%v", err)
	}
	want := Fingerprint(pub)
	if env.KeyID != want {
		return &fault.Error{Kind: fault.Signature, Err: fmt.Errorf("signature: signed by key %s, expected %s: %w", env.KeyID, want, ErrMismatch),
			Hint: "check that --verify-key is the producer's public key"}
	}
	sum := sha256.Sum256(sidecar)
	if !ecdsa.VerifyASN1(pub, sum[:], env.Signature) {
		return &fault.Error{Kind: fault.Signature, Err: fmt.Errorf("signature: does not verify: the archive was tampered with: %w", ErrMismatch),
			Hint: "do not use this archive; get a fresh copy from the producer"}
	}
	return nil
}

// GenerateKey writes a new P-256 key pair: PKCS#8 PEM private key (mode
// 0600) and PKIX PEM public key (0644). It refuses to overwrite files.
func GenerateKey(privPath, pubPath string) error { return GenerateKeyTo(privPath, pubPath, false) }

// GenerateKeyTo is GenerateKey; with replace, existing files are
// replaced: both keys are written beside their paths and renamed over
// them only once both are complete, so a failure leaves the old pair.
func GenerateKeyTo(privPath, pubPath string, replace bool) error {
	for _, p := range []string{privPath, pubPath} {
		st, err := os.Lstat(p)
		switch {
		case err != nil:
		case !replace:
			return fault.WithHint(fault.Errorf(fault.Usage, "keygen: %s already exists", p), fault.Usage,
				"pass --force to replace the pair (atomically: the old files stay until the new ones are complete), or choose new file names")
		case !st.Mode().IsRegular():
			return fault.Errorf(fault.Usage, "keygen: %s exists and is not a regular file; refusing to replace it", p)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fault.Errorf(fault.Env, "keygen: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fault.Errorf(fault.Internal, "keygen: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fault.Errorf(fault.Internal, "keygen: %w", err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if replace {
		return replacePair(privPath, privPEM, pubPath, pubPEM)
	}
	if err := writeNew(privPath, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(privPath)
		return err
	}
	return nil
}

// replacePair writes both keys to temporary files beside their paths and
// renames them into place once both are written.
func replacePair(privPath string, priv []byte, pubPath string, pub []byte) error {
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}()
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{privPath, priv, 0o600}, {pubPath, pub, 0o644}} {
		t, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".keygen-*") // mode 0600
		if err != nil {
			return fault.Errorf(fault.Env, "keygen: %w", err)
		}
		tmps = append(tmps, t.Name())
		_, err = t.Write(f.data)
		if err == nil {
			err = t.Chmod(f.mode)
		}
		if err == nil {
			err = t.Sync()
		}
		if cerr := t.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fault.Errorf(fault.Env, "keygen: %s: %w", f.path, err)
		}
	}
	for i, p := range []string{privPath, pubPath} {
		if err := os.Rename(tmps[i], p); err != nil {
			return fault.Errorf(fault.Env, "keygen: %w", err)
		}
	}
	tmps = nil
	return nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return fault.Errorf(fault.Env, "keygen: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fault.Errorf(fault.Env, "keygen: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fault.Errorf(fault.Env, "keygen: %w", err)
	}
	return nil
}
