package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerifyHS256 measures verifying a good HMAC token: the cost
// every authenticated handshake pays with a shared secret.
func BenchmarkVerifyHS256(b *testing.B) {
	a := newTestAuth(b, Options{SecretFile: writeFile(b, "secret", testSecret)}, nil)
	benchVerify(b, a, sign(b, jwt.SigningMethodHS256, testSecret, "", claims()))
}

// BenchmarkVerifyES256 measures verifying a good ECDSA P-256 token from a
// JWKS, looked up by kid.
func BenchmarkVerifyES256(b *testing.B) {
	set := jwksJSON(b, jwk{key: &ecKey().PublicKey, kid: "ec"}, jwk{key: &rsaKeyA().PublicKey, kid: "rsa"})
	a := newTestAuth(b, Options{JWKSFile: writeFile(b, "jwks.json", set)}, nil)
	benchVerify(b, a, sign(b, jwt.SigningMethodES256, ecKey(), "ec", claims()))
}

// BenchmarkVerifyForged measures refusing an HS256 token with a bad
// signature, what a flood of forgeries costs.
func BenchmarkVerifyForged(b *testing.B) {
	a := newTestAuth(b, Options{SecretFile: writeFile(b, "secret", testSecret)}, nil)
	tok := sign(b, jwt.SigningMethodHS256, []byte("forger's secret"), "", claims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(tok); err != errBadSignature {
			b.Fatal(err)
		}
	}
}

func benchVerify(b *testing.B, a *Authenticator, tok string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExtract measures finding a token in each source of a browser
// handshake, scrubbing included.
func BenchmarkExtract(b *testing.B) {
	tok := sign(b, jwt.SigningMethodHS256, testSecret, "", claims())
	cases := []struct {
		name   string
		target string
		line   string
	}{
		{"header", "/chat", "Authorization: Bearer " + tok},
		{"query", "/chat?room=1&access_token=" + tok, "X-Nothing: 1"},
		{"cookie", "/chat", "Cookie: theme=dark; access_token=" + tok},
		{"subprotocol", "/chat", "Sec-WebSocket-Protocol: wsguard.bearer, bearer." + tok + ", chat.v1"},
	}
	o := Options{SecretFile: writeFile(b, "secret", testSecret), Sources: allSources}
	a := newTestAuth(b, o, nil)
	for _, c := range cases {
		r := request(b, c.target, c.line)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, found, err := a.Extract(r); !found || err != nil {
					b.Fatal(found, err)
				}
			}
		})
	}
}
