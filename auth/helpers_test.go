package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/internal/httphead"
)

// testSecret is the HMAC secret of the tests: 64 bytes, enough for HS512.
var testSecret = []byte(strings.Repeat("0123456789abcdef", 4))

// Test keys, generated once per test binary: RSA generation is slow.
var (
	rsaKeyA = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaKeyB = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecKey   = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) })
	ec384   = sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) })
	edKey   = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// testEpoch is "now" for every test clock, so token times are fixed.
var testEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: testEpoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestAuth builds an Authenticator on clock (a fresh fake one if nil)
// that is closed when the test ends.
func newTestAuth(t testing.TB, opts Options, clock *fakeClock) *Authenticator {
	t.Helper()
	if clock == nil {
		clock = newClock()
	}
	a, err := newAuthenticator(context.Background(), opts, clock.Now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// writeFile writes data to a file called name in a fresh temporary
// directory and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pemFile writes pub as a PEM "PUBLIC KEY" file and returns its path.
func pemFile(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	return writeFile(t, "key.pem", pemPublic(t, pub))
}

func pemPublic(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claims returns the claims of a token valid at testEpoch for user "alice".
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "alice",
		"iat": testEpoch.Add(-time.Minute).Unix(),
		"exp": testEpoch.Add(time.Hour).Unix(),
	}
}

// with returns a copy of c with the given claims set, or deleted when the
// value is nil.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// sign makes a token with method and key; kid, when set, goes in the
// header.
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing %s: %v", m.Alg(), err)
	}
	return s
}

// jwk describes one key of a test JWKS.
type jwk struct {
	key any // public key, or []byte for an oct key
	kid string
	alg string
	use string
}

// jwksJSON encodes keys as a JWK Set.
func jwksJSON(t testing.TB, keys ...jwk) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		opts := jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{
				KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.USE(k.use),
			},
		}
		if _, ok := k.key.([]byte); ok {
			opts.Marshal.Private = true
		}
		j, err := jwkset.NewJWKFromKey(k.key, opts)
		if err != nil {
			t.Fatalf("jwk %s: %v", k.kid, err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// request parses an upgrade request for target with extra header lines.
func request(t testing.TB, target string, lines ...string) *httphead.Request {
	t.Helper()
	head := "GET " + target + " HTTP/1.1\r\nHost: example.com\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, l := range lines {
		head += l + "\r\n"
	}
	r, err := httphead.ParseRequest([]byte(head+"\r\n"), nil)
	if err != nil {
		t.Fatalf("parsing test request: %v", err)
	}
	return &r
}

// wantReason fails the test unless err is an *Error with reason.
func wantReason(t testing.TB, err error, reason string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("err = %v (%T), want *Error with reason %q", err, err, reason)
	}
	if e.Reason != reason {
		t.Fatalf("reason = %q (%v), want %q", e.Reason, e, reason)
	}
}
