package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyGood(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  func(t *testing.T) Options
		token func(t *testing.T) string
		want  string
	}{
		{
			name:  "HS256",
			opts:  secretOpts,
			token: signed(jwt.SigningMethodHS256, secret, "", claims()),
			want:  "alice",
		},
		{
			name:  "HS384",
			opts:  secretOpts,
			token: signed(jwt.SigningMethodHS384, secret, "", claims()),
			want:  "alice",
		},
		{
			name:  "HS512 with a kid, which a secret ignores",
			opts:  secretOpts,
			token: signed(jwt.SigningMethodHS512, secret, "k1", claims()),
			want:  "alice",
		},
		{
			name: "HS256 secret file with trailing newline",
			opts: func(t *testing.T) Options {
				data := append(append([]byte{}, testSecret...), '\n')
				return Options{SecretFile: writeFile(t, "secret", data)}
			},
			token: signed(jwt.SigningMethodHS256, secret, "", claims()),
			want:  "alice",
		},
		{
			name:  "RS256",
			opts:  pemOpts(rsaAPub),
			token: signed(jwt.SigningMethodRS256, rsaA, "", claims()),
			want:  "alice",
		},
		{
			name:  "PS256",
			opts:  pemOpts(rsaAPub),
			token: signed(jwt.SigningMethodPS256, rsaA, "", claims()),
			want:  "alice",
		},
		{
			name:  "ES256",
			opts:  pemOpts(ec256P),
			token: signed(jwt.SigningMethodES256, ec256, "", claims()),
			want:  "alice",
		},
		{
			name:  "ES384",
			opts:  pemOpts(ec384P),
			token: signed(jwt.SigningMethodES384, ec384K, "", claims()),
			want:  "alice",
		},
		{
			name:  "EdDSA",
			opts:  pemOpts(edPub),
			token: signed(jwt.SigningMethodEdDSA, ed, "", claims()),
			want:  "alice",
		},
		{
			name: "PEM file with two keys",
			opts: func(t *testing.T) Options {
				data := pemPublic(t, &ecKey().PublicKey)
				data = append(data, pemPublic(t, &rsaKeyB().PublicKey)...)
				return Options{PublicKeyFile: writeFile(t, "keys.pem", data)}
			},
			token: signed(jwt.SigningMethodRS512, rsaB, "", claims()),
			want:  "alice",
		},
		{
			name: "issuer and audience",
			opts: func(t *testing.T) Options {
				o := secretOpts(t)
				o.Issuer, o.Audience = "https://idp.example", "wsguard"
				return o
			},
			token: func(t *testing.T) string {
				aud := []string{"other", "wsguard"}
				c := with(claims(), "iss", "https://idp.example", "aud", aud)
				return sign(t, jwt.SigningMethodHS256, testSecret, "", c)
			},
			want: "alice",
		},
		{
			name: "expired within leeway",
			opts: func(t *testing.T) Options {
				o := secretOpts(t)
				o.Leeway = time.Minute
				return o
			},
			token: signed(jwt.SigningMethodHS256, secret, "",
				with(claims(), "exp", testEpoch.Add(-30*time.Second).Unix())),
			want: "alice",
		},
		{
			name:  "no exp",
			opts:  secretOpts,
			token: signed(jwt.SigningMethodHS256, secret, "", with(claims(), "exp", nil)),
			want:  "alice",
		},
		{
			name: "custom user claim",
			opts: func(t *testing.T) Options {
				o := secretOpts(t)
				o.UserClaim = "email"
				return o
			},
			token: signed(jwt.SigningMethodHS256, secret, "",
				with(claims(), "email", "alice@example.com")),
			want: "alice@example.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAuth(t, tt.opts(t), nil)
			user, err := a.Verify(tt.token(t))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if user != tt.want {
				t.Fatalf("user = %q, want %q", user, tt.want)
			}
		})
	}
}

// signed returns a token maker for sign's arguments.
func signed(
	m jwt.SigningMethod, key func() any, kid string, c jwt.MapClaims,
) func(*testing.T) string {
	return func(t *testing.T) string { return sign(t, m, key(), kid, c) }
}

// pemOpts returns options with the public key of key in a PEM file.
func pemOpts(pub func() any) func(*testing.T) Options {
	return func(t *testing.T) Options { return Options{PublicKeyFile: pemFile(t, pub())} }
}

// Key getters for signed and pemOpts.
var (
	secret  = func() any { return testSecret }
	rsaA    = func() any { return rsaKeyA() }
	rsaB    = func() any { return rsaKeyB() }
	rsaAPub = func() any { return &rsaKeyA().PublicKey }
	ec256   = func() any { return ecKey() }
	ec256P  = func() any { return &ecKey().PublicKey }
	ec384K  = func() any { return ec384() }
	ec384P  = func() any { return &ec384().PublicKey }
	ed      = func() any { return edKey() }
	edPub   = func() any { return edKey().Public() }
)

func secretOpts(t *testing.T) Options {
	return Options{SecretFile: writeFile(t, "secret", testSecret)}
}

func rsaOpts(t *testing.T) Options {
	return Options{PublicKeyFile: pemFile(t, &rsaKeyA().PublicKey)}
}

// rawToken builds a token from a header and claims in JSON and a
// signature, without signing anything.
func rawToken(header, claims, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + "." + sig
}

func TestVerifyRefused(t *testing.T) {
	t.Parallel()
	hs256 := func(c jwt.MapClaims) func(t *testing.T) string {
		return signed(jwt.SigningMethodHS256, secret, "", c)
	}
	withIssuer := func(t *testing.T) Options {
		o := secretOpts(t)
		o.Issuer, o.Audience = "https://idp.example", "wsguard"
		return o
	}
	good := with(claims(), "iss", "https://idp.example", "aud", "wsguard")
	hour, minute := time.Hour, time.Minute
	at := func(d time.Duration) int64 { return testEpoch.Add(d).Unix() }

	tests := []struct {
		name   string
		opts   func(t *testing.T) Options
		token  func(t *testing.T) string
		reason string
	}{
		{"not three parts", secretOpts, literal("abc"), "malformed"},
		{"bad base64", secretOpts, literal("a.b.c"), "malformed"},
		{"header not JSON", secretOpts, literal(rawToken("{", "{}", "")), "malformed"},
		{"no alg", secretOpts, literal(rawToken(`{"typ":"JWT"}`, `{}`, "")), "malformed"},
		{"crit header", secretOpts, withHeader("crit", []string{"exp"}), "malformed"},
		{"kid not a string", secretOpts, withHeader("kid", 7), "malformed"},
		{"exp not a number", secretOpts, hs256(with(claims(), "exp", "soon")), "malformed"},
		{"too large", secretOpts, literal(strings.Repeat("a", 4097)), "too_large"},
		{
			"alg none", secretOpts,
			signed(jwt.SigningMethodNone, func() any { return jwt.UnsafeAllowNoneSignatureType },
				"", claims()),
			"alg_none",
		},
		{"alg None", secretOpts, literal(rawToken(`{"alg":"None"}`, `{}`, "")), "alg_none"},
		{
			// The confusion attack: the RSA public key, as published, used
			// as an HMAC secret.
			"HS256 against an RSA public key", rsaOpts,
			func(t *testing.T) string {
				pemBytes := pemPublic(t, &rsaKeyA().PublicKey)
				return sign(t, jwt.SigningMethodHS256, pemBytes, "", claims())
			},
			"alg_not_allowed",
		},
		{
			"RS256 against a secret", secretOpts,
			signed(jwt.SigningMethodRS256, rsaA, "", claims()), "alg_not_allowed",
		},
		{
			"ES384 against a P-256 key", pemOpts(ec256P),
			signed(jwt.SigningMethodES384, ec384K, "", claims()), "alg_not_allowed",
		},
		{
			"PS256 against a JWK limited to RS256",
			func(t *testing.T) Options {
				set := jwksJSON(t, jwk{key: &rsaKeyA().PublicKey, kid: "a", alg: "RS256"})
				return Options{JWKSFile: writeFile(t, "jwks.json", set)}
			},
			signed(jwt.SigningMethodPS256, rsaA, "a", claims()), "alg_not_allowed",
		},
		{
			"unknown alg", secretOpts,
			literal(rawToken(`{"alg":"HS1"}`, `{"sub":"alice"}`, "AAAA")), "alg_not_allowed",
		},
		{
			"wrong secret", secretOpts,
			signed(jwt.SigningMethodHS256, func() any { return []byte("another secret") }, "",
				claims()),
			"bad_signature",
		},
		{
			"other RSA key", rsaOpts,
			signed(jwt.SigningMethodRS256, rsaB, "", claims()), "bad_signature",
		},
		{
			"payload swapped", secretOpts,
			func(t *testing.T) string {
				a := strings.Split(sign(t, jwt.SigningMethodHS256, testSecret, "", claims()), ".")
				c := with(claims(), "sub", "root")
				b := strings.Split(sign(t, jwt.SigningMethodHS256, testSecret, "", c), ".")
				return a[0] + "." + b[1] + "." + a[2]
			},
			"bad_signature",
		},
		{
			// A forgery is refused for its signature, whatever its claims.
			"expired and forged", secretOpts,
			signed(jwt.SigningMethodHS256, func() any { return []byte("forger's secret") }, "",
				with(claims(), "exp", at(-hour))),
			"bad_signature",
		},
		{"expired", secretOpts, hs256(with(claims(), "exp", at(-time.Second))), "expired"},
		{"nbf ahead", secretOpts, hs256(with(claims(), "nbf", at(minute))), "not_yet_valid"},
		{"iat ahead", secretOpts, hs256(with(claims(), "iat", at(minute))), "not_yet_valid"},
		{"wrong issuer", withIssuer, hs256(with(good, "iss", "https://evil")), "wrong_issuer"},
		{"no issuer", withIssuer, hs256(with(good, "iss", nil)), "missing_claim"},
		{"wrong audience", withIssuer, hs256(with(good, "aud", []string{"a", "b"})), "wrong_audience"},
		{"no audience", withIssuer, hs256(with(good, "aud", nil)), "missing_claim"},
		{"no sub", secretOpts, hs256(with(claims(), "sub", nil)), "missing_claim"},
		{"empty sub", secretOpts, hs256(with(claims(), "sub", "")), "missing_claim"},
		{"sub not a string", secretOpts, hs256(with(claims(), "sub", 42)), "missing_claim"},
		{
			"unknown kid",
			func(t *testing.T) Options {
				set := jwksJSON(t, jwk{key: &rsaKeyA().PublicKey, kid: "a"})
				return Options{JWKSFile: writeFile(t, "jwks.json", set)}
			},
			signed(jwt.SigningMethodRS256, rsaA, "b", claims()), "unknown_key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAuth(t, tt.opts(t), nil)
			user, err := a.Verify(tt.token(t))
			if user != "" {
				t.Errorf("user = %q, want none", user)
			}
			wantReason(t, err, tt.reason)
			e := err.(*Error)
			code := codeInvalidToken
			if tt.reason == "too_large" {
				code = codeInvalidRequest
			}
			if e.Code != code {
				t.Errorf("code = %q, want %q", e.Code, code)
			}
			want := `Bearer error="` + code + `", error_description="` + tt.reason + `"`
			if got := e.WWWAuthenticate(); got != want {
				t.Errorf("WWWAuthenticate = %s, want %s", got, want)
			}
			if e.Status() != 401 {
				t.Errorf("Status = %d, want 401", e.Status())
			}
		})
	}
}

// withHeader returns a maker of an HS256 token with an extra header.
func withHeader(name string, value any) func(*testing.T) string {
	return func(t *testing.T) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
		tok.Header[name] = value
		s, err := tok.SignedString(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func literal(s string) func(*testing.T) string {
	return func(*testing.T) string { return s }
}

func TestErrorStrings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err      *Error
		msg, www string
	}{
		{ErrMissing, "auth: missing token", "Bearer"},
		{
			errExpired, "auth: invalid_token: expired",
			`Bearer error="invalid_token", error_description="expired"`,
		},
		{
			errTooLarge, "auth: invalid_request: too_large",
			`Bearer error="invalid_request", error_description="too_large"`,
		},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.msg {
			t.Errorf("Error() = %q, want %q", got, tt.msg)
		}
		if got := tt.err.WWWAuthenticate(); got != tt.www {
			t.Errorf("WWWAuthenticate() = %q, want %q", got, tt.www)
		}
		if got := tt.err.Status(); got != 401 {
			t.Errorf("Status() = %d, want 401", got)
		}
	}

	// Callers find the refusal through wrapping.
	wrapped := errors.Join(errors.New("handshake"), errExpired)
	if e, ok := errors.AsType[*Error](wrapped); !ok || e.Reason != "expired" {
		t.Errorf("errors.AsType through Join = %v, %v", e, ok)
	}
}

func TestMaxTokenSize(t *testing.T) {
	t.Parallel()
	o := secretOpts(t)
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", claims())
	o.MaxTokenSize = len(tok)
	a := newTestAuth(t, o, nil)
	if _, err := a.Verify(tok); err != nil {
		t.Fatalf("token of exactly MaxTokenSize: %v", err)
	}

	long := sign(t, jwt.SigningMethodHS256, testSecret, "", with(claims(), "pad", "x"))
	_, err := a.Verify(long)
	wantReason(t, err, "too_large")

	// Extract refuses it before Verify sees it, in every source.
	lines := map[Source]string{
		SourceHeader:      "Authorization: Bearer " + long,
		SourceCookie:      "Cookie: access_token=" + long,
		SourceSubprotocol: "Sec-WebSocket-Protocol: bearer." + long,
	}
	for s, line := range lines {
		o.Sources = []Source{s}
		a := newTestAuth(t, o, nil)
		_, _, err := a.Extract(request(t, "/", line))
		wantReason(t, err, "too_large")
	}
	o.Sources = []Source{SourceQuery}
	a = newTestAuth(t, o, nil)
	_, _, err = a.Extract(request(t, "/?access_token="+long))
	wantReason(t, err, "too_large")
}
