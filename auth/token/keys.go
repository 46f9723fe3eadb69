package token

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
)

// Algorithm names as they appear in a JWS header and in Key.Alg.
const (
	// AlgES256 is ECDSA on P-256 with SHA-256: what Voxanne signs with.
	AlgES256 = "ES256"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256, accepted only for keys of an
	// external JWKS that declares it.
	AlgRS256 = "RS256"
	// AlgHS256 is HMAC-SHA256, accepted only with Verifier.HS256Secret.
	AlgHS256 = "HS256"
)

// Key is a signing or verification key. Alg is the one algorithm a token naming
// this key's ID may use; binding the algorithm to the key, not to the token's
// header, is what defeats algorithm confusion attacks.
type Key struct {
	// ID is the kid written into and looked up from token headers.
	ID string
	// Private is the signing key; it is nil for verify-only keys such as those
	// of an external JWKS or a retired local key.
	Private *ecdsa.PrivateKey
	// Public is an *ecdsa.PublicKey on P-256 for ES256 or an *rsa.PublicKey for
	// RS256. When nil, the public half of Private is used.
	Public crypto.PublicKey
	// Alg is AlgES256 or AlgRS256.
	Alg string
}

// publicKey returns the key that verifies signatures, falling back to the public
// half of Private so that callers loading a signing key need not set both.
func (k *Key) publicKey() crypto.PublicKey {
	if k.Public != nil {
		return k.Public
	}
	if k.Private != nil {
		return &k.Private.PublicKey
	}
	return nil
}

// NewES256Key generates a P-256 signing key with a random kid. The kid is random
// rather than a thumbprint so that it reveals nothing and never collides with a
// key the operator imports later.
func NewES256Key() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token: generate key: %w", err)
	}
	return &Key{ID: newKID(), Private: priv, Public: &priv.PublicKey, Alg: AlgES256}, nil
}

// newKID returns 16 random bytes in unpadded base64url: URL- and header-safe.
func newKID() string {
	var b [16]byte
	// crypto/rand.Read never fails on supported platforms (it crashes instead),
	// so there is no error worth returning.
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// MarshalPrivate encodes k's private key as PKCS #8 DER. The kid is not part of
// the encoding; storage keeps it next to the (sealed) DER.
func MarshalPrivate(k *Key) ([]byte, error) {
	if k == nil || k.Private == nil {
		return nil, errors.New("token: marshal private key: no private key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("token: marshal private key: %w", err)
	}
	return der, nil
}

// ParsePrivate decodes a PKCS #8 DER P-256 private key as written by
// MarshalPrivate. The returned Key has Alg ES256 and an empty ID: the caller sets
// ID from the kid stored alongside the key.
func ParsePrivate(der []byte) (*Key, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("token: parse private key: %w", err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("token: parse private key: not an ECDSA P-256 key")
	}
	return &Key{Private: priv, Public: &priv.PublicKey, Alg: AlgES256}, nil
}

// DeriveKEK turns the operator's key-encryption secret into a 32-byte AES-256
// key. SHA-256 is a plain hash, not a password KDF: the secret must already be
// high-entropy (for example 32 random bytes, encoded), never a human password.
func DeriveKEK(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Seal encrypts plaintext (a private key's DER) for storage with AES-256-GCM
// under kek. The output is a random 12-byte nonce, the ciphertext and the
// 16-byte tag; the random nonce means the same key may seal many values.
func Seal(kek, plaintext []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, fmt.Errorf("token: seal: %w", err)
	}
	return aead.Seal(nil, nil, plaintext, nil), nil
}

// Open reverses Seal. It fails when kek is wrong or sealed was altered, so a
// corrupted or swapped key never reaches the signer.
func Open(kek, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, fmt.Errorf("token: open: %w", err)
	}
	plaintext, err := aead.Open(nil, nil, sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("token: open: %w", err)
	}
	return plaintext, nil
}

// newAEAD insists on a 32-byte kek: aes.NewCipher would silently accept 16 or
// 24 bytes and downgrade to AES-128 or AES-192.
func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("key-encryption key must be 32 bytes, got %d", len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}
