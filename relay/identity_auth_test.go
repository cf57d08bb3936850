package relay

// Client identity by JWT, end to end: tokens signed in the test with an
// HMAC secret file or with keys a JWKS server publishes and rotates.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/testsupport"
)

// jwtKey signs test tokens.
type jwtKey struct {
	method jwt.SigningMethod
	key    any    // private key or HMAC secret
	kid    string // "" for none
}

// token signs claims, with exp an hour ahead unless claims set it.
func (k jwtKey) token(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	tok := jwt.NewWithClaims(k.method, claims)
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	s, err := tok.SignedString(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// user signs a token for sub.
func (k jwtKey) user(t testing.TB, sub string) string {
	t.Helper()
	return k.token(t, jwt.MapClaims{"sub": sub})
}

// newSecret writes a random HMAC secret, with the trailing newline an
// editor would leave, to a file and returns the file and the key.
func newSecret(t testing.TB) (string, jwtKey) {
	t.Helper()
	var raw [32]byte
	rand.Read(raw[:])
	secret := hex.EncodeToString(raw[:])
	file := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, jwtKey{method: jwt.SigningMethodHS256, key: []byte(secret)}
}

func bearer(tok string) headerList { return headerList{{"Authorization", "Bearer " + tok}} }

// asUser is the sentView of an authenticated upgrade of target by user.
func asUser(target, user string) sentView {
	v := sentView{target: target, header: map[string][]string{"X-User": {user}}}
	if user == "" {
		v.header["X-User"] = nil
	}
	return v
}

func TestIdentityJWT(t *testing.T) {
	t.Parallel()
	secretFile, key := newSecret(t)
	_, otherKey := newSecret(t)
	alice, bob, carol := key.user(t, "alice"), key.user(t, "bob"), key.user(t, "carol")
	expired := key.token(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice"}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	const invalid = `Bearer error="invalid_token", error_description=`
	spoofUser := headerList{{"X-User", "admin"}, {"X-User", "root"}}

	tests := []struct {
		name     string
		required bool
		limits   func(*config.Limits)
		steps    []idStep
	}{
		{"required", true, func(l *config.Limits) { l.PerUser = 2 }, []idStep{
			{name: "no token", status: 401, reason: "missing", auth: "Bearer"},
			{name: "another scheme is no token", hdr: headerList{{"Authorization", "Basic YWxpY2U6cHc="}},
				status: 401, reason: "missing", auth: "Bearer"},
			{name: "expired", hdr: bearer(expired), status: 401, reason: "expired", auth: invalid + `"expired"`},
			{name: "signed by another key", hdr: bearer(otherKey.user(t, "alice")), status: 401,
				reason: "bad_signature", auth: invalid + `"bad_signature"`},
			{name: "alg none", hdr: bearer(noneTok), status: 401, reason: "alg_none", auth: invalid + `"alg_none"`},
			{name: "header token; the client's own X-User is dropped", target: "/ws?room=1",
				hdr: append(bearer(alice), spoofUser...), status: 101, sent: asUser("/ws?room=1", "alice")},
			{name: "query token is cut from the target", target: "/ws?room=2&access_token=" + alice + "&x=y",
				status: 101, sent: asUser("/ws?room=2&x=y", "alice")},
			{name: "third connection of the user", hdr: bearer(alice), status: 429, reason: "per_user"},
			{name: "another user", hdr: bearer(bob), status: 101, sent: asUser("/", "bob")},
		}},
		{"optional, with an anonymous share", false, func(l *config.Limits) {
			l.MaxConnections = 4
			l.AnonymousShare = 0.5
		}, []idStep{
			{name: "anonymous; its X-User is dropped", hdr: spoofUser, status: 101, sent: asUser("/", "")},
			{name: "anonymous", status: 101, sent: asUser("/", "")},
			{name: "anonymous beyond the share", status: 503, reason: "anonymous_share"},
			{name: "a present token is still checked", hdr: bearer(expired), status: 401,
				reason: "expired", auth: invalid + `"expired"`},
			{name: "authenticated", hdr: bearer(alice), status: 101, sent: asUser("/", "alice")},
			{name: "authenticated, the last slot", hdr: bearer(bob), status: 101, sent: asUser("/", "bob")},
			{name: "beyond max_connections", hdr: bearer(carol), status: 503, reason: "max_connections"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startRecordingBackend(t)
			g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
				c.Limits.PerIP = 0
				tt.limits(&c.Limits)
				c.Auth.Required = tt.required
				c.Auth.JWT.SecretFile = secretFile
				c.Auth.ForwardUserHeader = "X-User"
			}))
			runSteps(t, g.Addr, b, tt.steps)
		})
	}
}

// jwksServer serves a JWKS that a test can replace, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex // guards body
	body    []byte
	fetches atomic.Int64
}

func startJWKS(t testing.TB, keys ...ed25519.PrivateKey) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve makes the server answer with the public halves of keys, each
// with its key ID kidOf.
func (s *jwksServer) serve(t testing.TB, keys ...ed25519.PrivateKey) {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: kidOf(k), ALG: jwkset.AlgEdDSA, USE: jwkset.UseSig,
		}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// kidOf names a key by the start of its public half.
func kidOf(k ed25519.PrivateKey) string {
	return hex.EncodeToString(k.Public().(ed25519.PublicKey)[:6])
}

func newEd25519(t testing.TB) jwtKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwtKey{method: jwt.SigningMethodEdDSA, key: priv, kid: kidOf(priv)}
}

// waitFetches waits until the JWKS server has been fetched n times.
func (s *jwksServer) waitFetches(t testing.TB, n int64) {
	t.Helper()
	testsupport.Poll(t, 15*time.Second, "JWKS fetches", func() (bool, string) {
		got := s.fetches.Load()
		return got >= n, fmt.Sprintf("fetched %d times, want %d", got, n)
	})
}

func TestIdentityJWKSRotation(t *testing.T) {
	t.Parallel()
	unknownKey := invalidToken("unknown_key")

	t.Run("an unknown key ID fetches the set", func(t *testing.T) {
		t.Parallel()
		old, cur := newEd25519(t), newEd25519(t)
		keys := startJWKS(t, old.key.(ed25519.PrivateKey))
		b := startRecordingBackend(t)
		g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
			c.Limits.PerIP = 0
			c.Auth.Required = true
			c.Auth.JWT.JWKSURL = keys.URL + "/jwks.json"
			c.Auth.JWT.JWKSRefresh = config.Duration(time.Hour) // only on demand
			c.Auth.ForwardUserHeader = "X-User"
		}))
		runSteps(t, g.Addr, b, []idStep{
			{name: "token of the served key", hdr: bearer(old.user(t, "alice")), status: 101,
				sent: asUser("/", "alice")},
		})

		// The key server rotates. The first token of the new key waits for
		// one fetch and passes; the old key is gone with that fetch, and
		// its key ID cannot fetch again within the unknown-key interval.
		keys.serve(t, cur.key.(ed25519.PrivateKey))
		runSteps(t, g.Addr, b, []idStep{
			{name: "token of the new key", hdr: bearer(cur.user(t, "bob")), status: 101, sent: asUser("/", "bob")},
			{name: "token of the retired key", hdr: bearer(old.user(t, "alice")), status: 401,
				reason: "unknown_key", auth: unknownKey},
		})
		if n := keys.fetches.Load(); n != 2 {
			t.Errorf("JWKS fetched %d times, want 2: at start and once for the new key ID", n)
		}
	})

	t.Run("the periodic refresh picks up a new key", func(t *testing.T) {
		t.Parallel()
		old, cur := newEd25519(t), newEd25519(t)
		keys := startJWKS(t, old.key.(ed25519.PrivateKey))
		b := startRecordingBackend(t)
		g := startGuard(t, identityConfig(t, b.URL, func(c *config.Config) {
			c.Limits.PerIP = 0
			c.Auth.Required = true
			c.Auth.JWT.JWKSURL = keys.URL + "/jwks.json"
			c.Auth.JWT.JWKSRefresh = config.Duration(20 * time.Millisecond)
		}))
		// Before the key is published, its token is refused; that spends
		// the on-demand fetch, so only the periodic one can admit it.
		tok := cur.user(t, "carol")
		runSteps(t, g.Addr, b, []idStep{
			{name: "token of an unpublished key", hdr: bearer(tok), status: 401,
				reason: "unknown_key", auth: unknownKey},
		})

		// Fetches run one after another, each storing its keys before
		// the next begins: once two have started after the rotation, the
		// first of them has stored the new set.
		keys.serve(t, old.key.(ed25519.PrivateKey), cur.key.(ed25519.PrivateKey))
		keys.waitFetches(t, keys.fetches.Load()+2)
		runSteps(t, g.Addr, b, []idStep{
			{name: "token of the published key", hdr: bearer(tok), status: 101},
			{name: "the old key still works", hdr: bearer(old.user(t, "dave")), status: 101},
		})
	})
}

// invalidToken is the WWW-Authenticate of an invalid_token refusal.
func invalidToken(reason string) string {
	return `Bearer error="invalid_token", error_description="` + reason + `"`
}
