package auth

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves a JWKS that a test can change, or a failure, and
// counts the requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex // guards body, status and gate
	body   []byte
	status int
	gate   chan struct{} // when non-nil, requests wait for it to close
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		body, status, gate := s.body, s.status, s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func TestJWKSFile(t *testing.T) {
	t.Parallel()
	set := jwksJSON(t,
		jwk{key: &rsaKeyA().PublicKey, kid: "rsa", alg: "RS256", use: "sig"},
		jwk{key: &ecKey().PublicKey, kid: "ec"},
		jwk{key: edKey().Public(), kid: "ed"},
		jwk{key: testSecret, kid: "hmac"},
		jwk{key: &rsaKeyB().PublicKey, kid: "enc", use: "enc"}, // skipped: not for signatures
		jwk{key: &ec384().PublicKey, kid: "bad-alg"},           // skipped: alg set below
	)
	set = bytes.Replace(set, []byte(`"kid":"bad-alg"`), []byte(`"kid":"bad-alg","alg":"ES256"`), 1)
	var logs bytes.Buffer
	a := newTestAuth(t, Options{
		JWKSFile: writeFile(t, "jwks.json", set),
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	}, nil)
	if !strings.Contains(logs.String(), "level=WARN msg=\"jwk skipped\"") ||
		!strings.Contains(logs.String(), "kid=bad-alg") {
		t.Errorf("the key with a wrong alg was not warned about; log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "kid=enc") {
		t.Errorf("the encryption key was warned about; log:\n%s", logs.String())
	}

	tests := []struct {
		name   string
		token  string
		reason string // "" for accepted
	}{
		{"RS256 by kid", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "rsa", claims()), ""},
		{"ES256 by kid", sign(t, jwt.SigningMethodES256, ecKey(), "ec", claims()), ""},
		{"EdDSA by kid", sign(t, jwt.SigningMethodEdDSA, edKey(), "ed", claims()), ""},
		{"HS256 by kid", sign(t, jwt.SigningMethodHS256, testSecret, "hmac", claims()), ""},
		{"no kid tries every key", sign(t, jwt.SigningMethodES256, ecKey(), "", claims()), ""},
		{"kid of another key", sign(t, jwt.SigningMethodES256, ecKey(), "ed", claims()), "alg_not_allowed"},
		{"RS384 where the JWK says RS256", sign(t, jwt.SigningMethodRS384, rsaKeyA(), "rsa", claims()),
			"alg_not_allowed"},
		{"skipped encryption key", sign(t, jwt.SigningMethodRS256, rsaKeyB(), "enc", claims()), "unknown_key"},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, rsaKeyA(), "zzz", claims()), "unknown_key"},
		{"HS256 with the RSA key's kid", sign(t, jwt.SigningMethodHS256, testSecret, "rsa", claims()),
			"alg_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := a.Verify(tt.token)
			if tt.reason == "" {
				if err != nil || user != "alice" {
					t.Fatalf("Verify = %q, %v; want alice", user, err)
				}
				return
			}
			wantReason(t, err, tt.reason)
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	rsaPEM := pemPublic(t, &rsaKeyA().PublicKey)
	privDER, err := x509.MarshalPKCS8PrivateKey(ecKey())
	if err != nil {
		t.Fatal(err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	failing := newJWKSServer(t, nil)
	failing.serve(http.StatusInternalServerError, []byte("oops"))
	empty := newJWKSServer(t, []byte(`{"keys":[]}`))

	tests := []struct {
		name string
		opts func(t *testing.T) Options
		want []string // substrings of the error
	}{
		{"no key source", func(*testing.T) Options { return Options{} }, []string{"no key source"}},
		{"missing secret file", func(*testing.T) Options { return Options{SecretFile: "/nonexistent/secret"} },
			[]string{"/nonexistent/secret"}},
		{"empty secret file", func(t *testing.T) Options {
			return Options{SecretFile: writeFile(t, "secret", []byte("\n"))}
		}, []string{"secret", "empty"}},
		{"missing PEM file", func(*testing.T) Options { return Options{PublicKeyFile: "/nonexistent/key.pem"} },
			[]string{"/nonexistent/key.pem"}},
		{"PEM file without PEM", func(t *testing.T) Options {
			return Options{PublicKeyFile: writeFile(t, "k.pem", []byte("hello"))}
		}, []string{"k.pem", "no PEM block"}},
		{"private key PEM", func(t *testing.T) Options {
			return Options{PublicKeyFile: writeFile(t, "k.pem", privPEM)}
		}, []string{"k.pem", "not the private one"}},
		{"broken PEM body", func(t *testing.T) Options {
			bad := bytes.Replace(rsaPEM, []byte("MII"), []byte("AAA"), 1)
			return Options{PublicKeyFile: writeFile(t, "k.pem", bad)}
		}, []string{"k.pem", "PUBLIC KEY"}},
		{"missing JWKS file", func(*testing.T) Options { return Options{JWKSFile: "/nonexistent/jwks.json"} },
			[]string{"/nonexistent/jwks.json"}},
		{"JWKS file not JSON", func(t *testing.T) Options {
			return Options{JWKSFile: writeFile(t, "jwks.json", []byte("{"))}
		}, []string{"jwks.json", "JSON"}},
		{"JWKS file without usable key", func(t *testing.T) Options {
			set := jwksJSON(t, jwk{key: &rsaKeyA().PublicKey, kid: "a", use: "enc"})
			return Options{JWKSFile: writeFile(t, "jwks.json", set)}
		}, []string{"jwks.json", "no usable"}},
		{"JWK alg that does not fit its key", func(t *testing.T) Options {
			set := []byte(strings.Replace(string(jwksJSON(t, jwk{key: &ecKey().PublicKey, kid: "a"})),
				`"kty"`, `"alg":"RS256","kty"`, 1))
			return Options{JWKSFile: writeFile(t, "jwks.json", set)}
		}, []string{"jwks.json", "no usable"}},
		{"JWKS URL not absolute", func(*testing.T) Options { return Options{JWKSURL: "/jwks.json"} },
			[]string{"/jwks.json"}},
		{"JWKS URL failing", func(*testing.T) Options { return Options{JWKSURL: failing.URL + "/keys"} },
			[]string{failing.URL + "/keys", "500"}},
		{"JWKS URL with empty set", func(*testing.T) Options { return Options{JWKSURL: empty.URL} },
			[]string{empty.URL, "no usable"}},
		{"unknown source", func(t *testing.T) Options {
			o := secretOpts(t)
			o.Sources = []Source{SourceHeader, 9}
			return o
		}, []string{"unknown token source"}},
		{"source twice", func(t *testing.T) Options {
			o := secretOpts(t)
			o.Sources = []Source{SourceQuery, SourceQuery}
			return o
		}, []string{"query listed twice"}},
		{"bad cookie name", func(t *testing.T) Options {
			o := secretOpts(t)
			o.Cookie = "a b"
			return o
		}, []string{"cookie name"}},
		{"negative leeway", func(t *testing.T) Options {
			o := secretOpts(t)
			o.Leeway = -time.Second
			return o
		}, []string{"negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := New(context.Background(), tt.opts(t))
			if err == nil {
				a.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestPEMBlockTypes(t *testing.T) {
	t.Parallel()
	pub := &rsaKeyA().PublicKey
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "idp.example"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &ecKey().PublicKey, ecKey())
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})

	for name, tc := range map[string]struct {
		file  []byte
		token string
	}{
		"RSA PUBLIC KEY": {pkcs1, sign(t, jwt.SigningMethodRS256, rsaKeyA(), "", claims())},
		"CERTIFICATE":    {cert, sign(t, jwt.SigningMethodES256, ecKey(), "", claims())},
	} {
		a := newTestAuth(t, Options{PublicKeyFile: writeFile(t, "k.pem", tc.file)}, nil)
		if _, err := a.Verify(tc.token); err != nil {
			t.Errorf("%s: Verify: %v", name, err)
		}
	}
}

// TestJWKSURLRotation follows a key rotation: the server starts with key
// A, tokens signed by B fail until the server publishes A and B and an
// unknown-kid refresh picks B up, and a server that then fails keeps the
// last good keys in use.
func TestJWKSURLRotation(t *testing.T) {
	t.Parallel()
	keyA := jwk{key: &rsaKeyA().PublicKey, kid: "A"}
	keyB := jwk{key: &ecKey().PublicKey, kid: "B"}
	srv := newJWKSServer(t, jwksJSON(t, keyA))
	clock := newClock()
	a := newTestAuth(t, Options{JWKSURL: srv.URL, JWKSRefresh: time.Hour}, clock)

	tokA := sign(t, jwt.SigningMethodRS256, rsaKeyA(), "A", claims())
	tokB := sign(t, jwt.SigningMethodES256, ecKey(), "B", claims())
	verify := func(step, tok, reason string, hits int64) {
		t.Helper()
		_, err := a.Verify(tok)
		if reason == "" && err != nil {
			t.Fatalf("%s: Verify: %v", step, err)
		}
		if reason != "" {
			wantReason(t, err, reason)
		}
		if got := srv.hits.Load(); got != hits {
			t.Fatalf("%s: server hits = %d, want %d", step, got, hits)
		}
	}

	verify("A at start", tokA, "", 1)
	verify("B unknown: one refresh", tokB, "unknown_key", 2)

	srv.serve(http.StatusOK, jwksJSON(t, keyA, keyB))
	verify("B again within the rate limit: no refresh", tokB, "unknown_key", 2)

	clock.Advance(defaultUnknownKIDRefresh)
	verify("B after the interval: refresh finds it", tokB, "", 3)
	verify("A still good", tokA, "", 3)

	srv.serve(http.StatusInternalServerError, []byte("down"))
	clock.Advance(defaultUnknownKIDRefresh)
	tokC := sign(t, jwt.SigningMethodRS256, rsaKeyB(), "C", claims())
	verify("C unknown, refresh fails", tokC, "unknown_key", 4)
	verify("A kept", tokA, "", 4)
	verify("B kept", tokB, "", 4)
}

// TestJWKSBackgroundRefresh checks the periodic refresh: it picks up a new
// key without any unknown kid, and keeps the keys through failures.
func TestJWKSBackgroundRefresh(t *testing.T) {
	t.Parallel()
	keyA := jwk{key: &rsaKeyA().PublicKey, kid: "A"}
	keyB := jwk{key: &ecKey().PublicKey, kid: "B"}
	srv := newJWKSServer(t, jwksJSON(t, keyA))
	a := newTestAuth(t, Options{
		JWKSURL:           srv.URL,
		JWKSRefresh:       5 * time.Millisecond,
		UnknownKIDRefresh: -1, // only the periodic refresh may fetch
	}, nil)

	tokB := sign(t, jwt.SigningMethodES256, ecKey(), "B", claims())
	_, err := a.Verify(tokB)
	wantReason(t, err, "unknown_key")

	srv.serve(http.StatusOK, jwksJSON(t, keyA, keyB))
	waitFor(t, "the refresh to pick up key B", func() bool {
		_, err := a.Verify(tokB)
		return err == nil
	})

	srv.serve(http.StatusBadGateway, nil)
	failedFrom := srv.hits.Load()
	waitFor(t, "two failed refreshes", func() bool { return srv.hits.Load() >= failedFrom+2 })
	if _, err := a.Verify(tokB); err != nil {
		t.Fatalf("after failed refreshes: %v", err)
	}

	// Close waits for the refresher, so the count is final at once. A
	// live refresher would fetch about four times in the window below:
	// the wait is the span of a negative check, not synchronisation.
	a.Close()
	stopped := srv.hits.Load()
	time.Sleep(20 * time.Millisecond)
	if got := srv.hits.Load(); got != stopped {
		t.Fatalf("%d fetches after Close", got-stopped)
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestUnknownKIDRateLimit floods the Authenticator with made-up key IDs
// and counts what reaches the key server.
func TestUnknownKIDRateLimit(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwksJSON(t, jwk{key: &ecKey().PublicKey, kid: "A"}))
	clock := newClock()
	a := newTestAuth(t, Options{JWKSURL: srv.URL, JWKSRefresh: time.Hour}, clock)

	flood := func(n int) {
		t.Helper()
		toks := make([]string, n)
		for i := range toks {
			toks[i] = sign(t, jwt.SigningMethodES256, ecKey(), fmt.Sprintf("fake-%d", i), claims())
		}
		var wg sync.WaitGroup
		for _, tok := range toks {
			wg.Go(func() {
				_, err := a.Verify(tok)
				if e, ok := err.(*Error); !ok || e.Reason != "unknown_key" {
					t.Errorf("Verify = %v, want unknown_key", err)
				}
			})
		}
		wg.Wait()
	}

	flood(200)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("after the first flood: %d hits, want 2 (start + one refresh)", got)
	}

	clock.Advance(defaultUnknownKIDRefresh - time.Second)
	flood(50)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("within the interval: %d hits, want 2", got)
	}

	clock.Advance(time.Second)
	flood(50)
	if got := srv.hits.Load(); got != 3 {
		t.Fatalf("after the interval: %d hits, want 3", got)
	}
}

// TestUnknownKIDJoinsFetch checks that requests arriving while a refresh
// runs wait for it rather than fail or start their own.
func TestUnknownKIDJoinsFetch(t *testing.T) {
	t.Parallel()
	keyA := jwk{key: &rsaKeyA().PublicKey, kid: "A"}
	keyB := jwk{key: &ecKey().PublicKey, kid: "B"}
	srv := newJWKSServer(t, jwksJSON(t, keyA))
	a := newTestAuth(t, Options{JWKSURL: srv.URL, JWKSRefresh: time.Hour}, nil)

	gate := make(chan struct{})
	srv.mu.Lock()
	srv.body, srv.gate = jwksJSON(t, keyA, keyB), gate
	srv.mu.Unlock()

	tokB := sign(t, jwt.SigningMethodES256, ecKey(), "B", claims())
	errs := make(chan error, 10)
	for range cap(errs) {
		go func() {
			_, err := a.Verify(tokB)
			errs <- err
		}()
	}
	waitFor(t, "the refresh to start", func() bool { return srv.hits.Load() == 2 })
	close(gate)
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("server hits = %d, want 2", got)
	}
}

func TestUnknownKIDRefreshOff(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwksJSON(t, jwk{key: &ecKey().PublicKey, kid: "A"}))
	a := newTestAuth(t, Options{JWKSURL: srv.URL, UnknownKIDRefresh: -1}, nil)
	_, err := a.Verify(sign(t, jwt.SigningMethodES256, ecKey(), "B", claims()))
	wantReason(t, err, "unknown_key")
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("server hits = %d, want 1", got)
	}
}
