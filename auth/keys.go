package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/MicahParks/jwkset"
)

// algSet is a set of JWS algorithms, one bit each.
type algSet uint16

// The algorithms wsguard verifies. A key allows a subset of them.
const (
	algHS256 algSet = 1 << iota
	algHS384
	algHS512
	algRS256
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	algES512
	algEdDSA

	algsHMAC = algHS256 | algHS384 | algHS512
	algsRSA  = algRS256 | algRS384 | algRS512 | algPS256 | algPS384 | algPS512
)

// algNames are the JWS names of the algorithms, in bit order.
var algNames = [...]string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// algBit returns the bit of the algorithm called name, or 0 if wsguard
// does not verify it. Names are case-sensitive (RFC 7515 section 4.1.1).
func algBit(name string) algSet {
	for i, n := range algNames {
		if n == name {
			return 1 << i
		}
	}
	return 0
}

// String lists the set's algorithm names, for logs.
func (s algSet) String() string {
	var names []string
	for i, n := range algNames {
		if s&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// key is one verification key with the algorithms it may check.
type key struct {
	kid  string // key ID from a JWK; empty for secrets, PEM keys and JWKs without one
	algs algSet // never empty
	pub  any    // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// algsFor returns the algorithms a public key (or HMAC secret) can verify,
// or 0 for a key wsguard cannot use. An ECDSA key allows only the
// algorithm of its curve (RFC 7518 section 3.4), so an ES384 token is never
// checked against a P-256 key.
func algsFor(pub any) algSet {
	switch k := pub.(type) {
	case []byte:
		return algsHMAC
	case *rsa.PublicKey:
		return algsRSA
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return algES256
		case elliptic.P384():
			return algES384
		case elliptic.P521():
			return algES512
		}
	case ed25519.PublicKey:
		return algEdDSA
	}
	return 0
}

// describe names a key's type for error messages.
func describe(pub any) string {
	switch k := pub.(type) {
	case []byte:
		return "HMAC secret"
	case *rsa.PublicKey:
		return "RSA key"
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "Ed25519 key"
	}
	return fmt.Sprintf("%T key", pub)
}

// minSecretLen is the shortest HMAC secret accepted without a warning:
// RFC 7518 section 3.2 asks for at least the hash size, 32 bytes for HS256.
const minSecretLen = 32

// loadSecret reads an HMAC secret file, less one trailing newline.
func loadSecret(path string, log *slog.Logger) (key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return key{}, fmt.Errorf("auth: reading secret file: %w", err)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	if len(data) == 0 {
		return key{}, fmt.Errorf("auth: secret file %s is empty", path)
	}
	if len(data) < minSecretLen {
		log.Warn("short hmac secret", slog.String("file", path),
			slog.Int("bytes", len(data)), slog.Int("want_at_least", minSecretLen))
	}
	return key{algs: algsHMAC, pub: data}, nil
}

// loadPEM reads every public key and certificate in a PEM file. It
// refuses private keys, so a misplaced signing key is noticed rather than
// quietly used.
func loadPEM(path string) ([]key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading public key file: %w", err)
	}

	var keys []key
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		k, err := pemKey(block)
		if err != nil {
			return nil, fmt.Errorf("auth: public key file %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: public key file %s holds no PEM block", path)
	}
	return keys, nil
}

// pemKey parses one PEM block into a key.
func pemKey(block *pem.Block) (key, error) {
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return key{}, fmt.Errorf("%s block: give the public key, not the private one",
				block.Type)
		}
		return key{}, fmt.Errorf("unexpected PEM block type %q", block.Type)
	}
	if err != nil {
		return key{}, fmt.Errorf("parsing %s block: %w", block.Type, err)
	}

	algs := algsFor(pub)
	if algs == 0 {
		return key{}, fmt.Errorf("%s block: unsupported %s", block.Type, describe(pub))
	}
	return key{algs: algs, pub: pub}, nil
}

// loadJWKSFile reads a JWKS file.
func loadJWKSFile(path string, log *slog.Logger) ([]key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading JWKS file: %w", err)
	}
	keys, err := parseJWKS(data, path, log)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", path, err)
	}
	return keys, nil
}

// parseJWKS parses a JSON Web Key Set. Keys that cannot verify signatures
// (encryption keys, unsupported types, an alg that does not fit the key)
// are skipped with a warning naming from; a set left with no usable key is
// an error.
func parseJWKS(data []byte, from string, log *slog.Logger) ([]key, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}

	keys := make([]key, 0, len(set.Keys))
	for i, m := range set.Keys {
		k, err := jwkKey(m)
		if err != nil {
			// Sets often hold encryption keys too: skipping one is routine,
			// and would otherwise be repeated at every refresh.
			level := slog.LevelWarn
			if errors.Is(err, errNotForSignatures) {
				level = slog.LevelDebug
			}
			log.Log(context.Background(), level, "jwk skipped",
				slog.String("from", from), slog.Int("index", i),
				slog.String("kid", m.KID), slog.String("error", err.Error()))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no usable signature key among %d", len(set.Keys))
	}
	return keys, nil
}

// errNotForSignatures marks a JWK whose use or key_ops rule out verifying
// signatures.
var errNotForSignatures = errors.New("not a signature key")

// jwkKey turns one JWK into a key. The JWK's alg, when present, is the only
// algorithm the key may check (RFC 7517 section 4.4); otherwise the key's
// type decides, as for PEM keys.
func jwkKey(m jwkset.JWKMarshal) (key, error) {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return key{}, fmt.Errorf("%w: use is %q", errNotForSignatures, m.USE)
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return key{}, fmt.Errorf("%w: key_ops lacks verify", errNotForSignatures)
	}

	// Private keeps symmetric (oct) keys, which jwkset otherwise refuses.
	// A private asymmetric key is reduced to its public half below.
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true},
		jwkset.JWKValidateOptions{})
	if err != nil {
		return key{}, err
	}
	pub := jwk.Key()
	if p, ok := pub.(interface{ Public() crypto.PublicKey }); ok {
		pub = p.Public()
	}

	algs := algsFor(pub)
	if algs == 0 {
		return key{}, fmt.Errorf("unsupported %s", describe(pub))
	}
	if m.ALG != "" {
		bit := algBit(m.ALG.String())
		if bit == 0 || algs&bit == 0 {
			return key{}, fmt.Errorf("alg %q does not fit a %s", m.ALG, describe(pub))
		}
		algs = bit
	}
	return key{kid: m.KID, algs: algs, pub: pub}, nil
}
