package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// JWK is the public JSON Web Key form of a Key (RFC 7517, RFC 7518). It has no
// field for private material ("d", "p", "q", "k", ...), so a JWK built by this
// package can never leak a private key, whatever Key it was made from.
type JWK struct {
	Kty    string   `json:"kty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	Kid    string   `json:"kid,omitempty"`
	Alg    string   `json:"alg,omitempty"`
	Use    string   `json:"use,omitempty"`
	KeyOps []string `json:"key_ops,omitempty"`
}

// RSA moduli outside these bounds are refused: smaller ones are forgeable,
// larger ones only make verification slow enough to be a denial-of-service lever.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// PublicJWK returns the public JWK of k: for ES256 kty "EC", crv "P-256" and the
// coordinates as fixed 32-byte unpadded base64url; for RS256 kty "RSA". It
// returns the zero JWK (empty Kty) when k holds no usable public key.
func PublicJWK(k *Key) JWK {
	if k == nil {
		return JWK{}
	}
	jwk := JWK{Kid: k.ID, Alg: k.Alg, Use: "sig", KeyOps: []string{"verify"}}
	switch pub := k.publicKey().(type) {
	case *ecdsa.PublicKey:
		if k.Alg != AlgES256 || pub.Curve != elliptic.P256() {
			return JWK{}
		}
		// Bytes is the 65-byte uncompressed point 0x04 || X || Y, whose fixed
		// width gives the left-padded coordinates RFC 7518 §6.2.1.2 requires.
		point, err := pub.Bytes()
		if err != nil {
			return JWK{}
		}
		jwk.Kty, jwk.Crv = "EC", "P-256"
		jwk.X = base64.RawURLEncoding.EncodeToString(point[1:33])
		jwk.Y = base64.RawURLEncoding.EncodeToString(point[33:65])
	case *rsa.PublicKey:
		if k.Alg != AlgRS256 || pub.N == nil || pub.E <= 0 {
			return JWK{}
		}
		jwk.Kty = "RSA"
		jwk.N = base64.RawURLEncoding.EncodeToString(pub.N.Bytes())
		jwk.E = base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	default:
		return JWK{}
	}
	return jwk
}

// jwks is the JSON Web Key Set document.
type jwks struct {
	Keys []JWK `json:"keys"`
}

// MarshalJWKS returns the JWKS document {"keys":[...]} listing the public part of
// each key. Keys without a usable public key are left out rather than failing
// the whole document, which is served to every client.
func MarshalJWKS(keys []*Key) []byte {
	doc := jwks{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		if jwk := PublicJWK(k); jwk.Kty != "" {
			doc.Keys = append(doc.Keys, jwk)
		}
	}
	// Marshaling a struct of strings cannot fail.
	out, _ := json.Marshal(doc)
	return out
}

// foreignJWK is a JWK as found in a JWKS this package did not write. It is kept
// apart from JWK so that unknown members can be read without ever being written.
type foreignJWK struct {
	Kty    string   `json:"kty"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
}

// ParseJWKS reads a JWKS document (such as an external Supabase project's
// /auth/v1/.well-known/jwks.json) into verify-only keys: EC P-256 keys as ES256
// and RSA keys as RS256. It skips what it cannot or must not use: other key
// types, curves and algorithms, keys without a kid, and keys declared for
// encryption only. Symmetric ("oct") keys are always skipped: a secret published
// in a JWKS is not a secret, and accepting one would let anyone sign tokens.
//
// A key of a supported type that is malformed, a duplicate kid, or a document
// that is not a JWKS is an error, because it signals a corrupted or tampered
// document; callers should then keep the key set they already have.
func ParseJWKS(data []byte) ([]*Key, error) {
	var doc struct {
		Keys *[]foreignJWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("token: parse JWKS: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`token: parse JWKS: no "keys" member`)
	}
	keys := make([]*Key, 0, len(*doc.Keys))
	seen := make(map[string]bool, len(*doc.Keys))
	for i, j := range *doc.Keys {
		if !usableForVerify(j) {
			continue
		}
		var (
			k   *Key
			err error
		)
		switch j.Kty {
		case "EC":
			k, err = parseECJWK(j)
		case "RSA":
			k, err = parseRSAJWK(j)
		}
		if err != nil {
			return nil, fmt.Errorf("token: parse JWKS: key %d (kid %q): %w", i, j.Kid, err)
		}
		if k == nil {
			continue
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("token: parse JWKS: duplicate kid %q", k.ID)
		}
		seen[k.ID] = true
		keys = append(keys, k)
	}
	return keys, nil
}

// usableForVerify filters on the members that say what a key is for, before
// any key material is decoded.
func usableForVerify(j foreignJWK) bool {
	if j.Kid == "" || (j.Use != "" && j.Use != "sig") {
		return false
	}
	if j.KeyOps != nil {
		ok := false
		for _, op := range j.KeyOps {
			if op == "verify" {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return j.Kty == "EC" || j.Kty == "RSA"
}

// parseECJWK returns nil, nil for curves and algorithms other than P-256/ES256.
func parseECJWK(j foreignJWK) (*Key, error) {
	if j.Crv != "P-256" || (j.Alg != "" && j.Alg != AlgES256) {
		return nil, nil
	}
	x, errX := base64.RawURLEncoding.Strict().DecodeString(j.X)
	y, errY := base64.RawURLEncoding.Strict().DecodeString(j.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return nil, errors.New("EC coordinates must be 32-byte base64url")
	}
	point := make([]byte, 0, 65)
	point = append(point, 4)
	point = append(point, x...)
	point = append(point, y...)
	// ParseUncompressedPublicKey rejects points off the curve, which would
	// otherwise open invalid-curve attacks.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, err
	}
	return &Key{ID: j.Kid, Public: pub, Alg: AlgES256}, nil
}

// parseRSAJWK returns nil, nil for algorithms other than RS256.
func parseRSAJWK(j foreignJWK) (*Key, error) {
	if j.Alg != "" && j.Alg != AlgRS256 {
		return nil, nil
	}
	n, errN := base64.RawURLEncoding.Strict().DecodeString(j.N)
	e, errE := base64.RawURLEncoding.Strict().DecodeString(j.E)
	if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("RSA n and e must be base64url")
	}
	var exp int64
	for _, b := range e {
		exp = exp<<8 | int64(b)
	}
	if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
		return nil, errors.New("RSA exponent out of range")
	}
	mod := new(big.Int).SetBytes(n)
	if bits := mod.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits out of range", bits)
	}
	return &Key{ID: j.Kid, Public: &rsa.PublicKey{N: mod, E: int(exp)}, Alg: AlgRS256}, nil
}

// Lookup returns a kid lookup over a snapshot of keys, suitable for
// Verifier.Keys or Verifier.External. Later keys with the same ID are ignored
// so that the first (normally the newest) wins deterministically.
func Lookup(keys []*Key) func(kid string) (*Key, bool) {
	m := make(map[string]*Key, len(keys))
	for _, k := range keys {
		if k == nil {
			continue
		}
		if _, dup := m[k.ID]; !dup {
			m[k.ID] = k
		}
	}
	return func(kid string) (*Key, bool) {
		k, ok := m[kid]
		return k, ok
	}
}
