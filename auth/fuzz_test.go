package auth

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/internal/httphead"
)

// FuzzExtract feeds Extract random targets and header lines. It must
// never panic, and what it forwards must carry no token: the target has
// no token parameter left and the subprotocol list no bearer entries.
func FuzzExtract(f *testing.F) {
	f.Add("/chat?room=1&access_token=a.b.c&x=%2F", "Authorization: Bearer h.h.h", uint8(0))
	f.Add("/?access%5Ftoken=a%2Eb", "Cookie: access_token=c.c.c; x=1", uint8(7))
	f.Add("/", "Sec-WebSocket-Protocol: wsguard.bearer, bearer.s.s.s, chat\n"+
		"Sec-WebSocket-Protocol: x", uint8(3))
	f.Add("/?a=1;access_token=x", "", uint8(1))
	f.Add("/?access_token=x&access_token=y", "Authorization: Bearer", uint8(2))
	f.Add("/?&&access_token=%41&", "Sec-WebSocket-Protocol: bearer.,,", uint8(5))
	f.Add("/?access_token=a%26b&c=d", "Authorization: bearer a.b==\nCookie: access_token=\"q\"", uint8(11))

	f.Fuzz(func(t *testing.T, target, lines string, order uint8) {
		head := "GET " + target + " HTTP/1.1\r\nHost: h\r\n"
		for l := range strings.SplitSeq(lines, "\n") {
			if l != "" {
				head += l + "\r\n"
			}
		}
		r, err := httphead.ParseRequest([]byte(head+"\r\n"), nil)
		if err != nil {
			return
		}

		a := fuzzAuth(t, order)
		c, found, err := a.Extract(&r)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			if found || c.Token != "" || c.Target != nil || c.Protocols != nil || c.Echo != "" {
				t.Fatalf("refusal came with %+v, %v", c, found)
			}
			return
		}
		if found != (c.Token != "") {
			t.Fatalf("found = %v with token %q", found, c.Token)
		}
		if len(c.Token) > a.opts.MaxTokenSize {
			t.Fatalf("token of %d bytes accepted", len(c.Token))
		}
		checkForwardedTarget(t, a, r.Target, c)
		checkForwardedProtocols(t, r.Fields, c)
	})
}

// fuzzAuth returns an Authenticator with all four sources in an order
// chosen by order, and a small MaxTokenSize so the limit gets exercised.
func fuzzAuth(t *testing.T, order uint8) *Authenticator {
	sources := append([]Source(nil), allSources...)
	for i := len(sources) - 1; i > 0; i-- {
		j := int(order) % (i + 1)
		order /= uint8(i + 1)
		sources[i], sources[j] = sources[j], sources[i]
	}
	return &Authenticator{opts: Options{
		Sources: sources, MaxTokenSize: 64, QueryParam: defaultParam, Cookie: defaultParam,
	}}
}

func checkForwardedTarget(t *testing.T, a *Authenticator, orig []byte, c Credential) {
	t.Helper()
	if c.Target == nil {
		return
	}
	path, _, _ := bytes.Cut(orig, []byte{'?'})
	if !bytes.HasPrefix(c.Target, path) {
		t.Fatalf("forwarded target %q lost the path of %q", c.Target, orig)
	}

	// No pair of the forwarded query is the token parameter.
	_, query, _ := bytes.Cut(c.Target, []byte{'?'})
	for pair := range strings.SplitSeq(string(query), "&") {
		name, _, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(name); err == nil && n == a.opts.QueryParam {
			t.Fatalf("forwarded target %q still has %s", c.Target, a.opts.QueryParam)
		}
	}
	tok, _, _, err := fromQuery(c.Target, a.opts.QueryParam)
	if err != nil || tok != nil {
		t.Fatalf("forwarded target %q yields token %q, %v", c.Target, tok, err)
	}

	// The token itself is gone, if it was in the target once and cannot
	// have been spelled across a joint of the remaining pairs.
	if c.Source == SourceQuery && !strings.Contains(c.Token, "&") &&
		bytes.Count(orig, []byte(c.Token)) == 1 && bytes.Contains(c.Target, []byte(c.Token)) {
		t.Fatalf("forwarded target %q contains the token %q", c.Target, c.Token)
	}
}

func checkForwardedProtocols(t *testing.T, fs httphead.Fields, c Credential) {
	t.Helper()
	if c.Protocols == nil {
		return
	}
	for e := range strings.SplitSeq(string(c.Protocols), ",") {
		e = strings.Trim(e, " \t")
		if e == "" && len(c.Protocols) > 0 {
			t.Fatalf("forwarded protocols %q hold an empty entry", c.Protocols)
		}
		if e == BearerProtocol || strings.HasPrefix(e, BearerPrefix) {
			t.Fatalf("forwarded protocols %q hold %q", c.Protocols, e)
		}
	}
	if c.Source == SourceSubprotocol && bytes.Contains(c.Protocols, []byte(BearerPrefix+c.Token)) {
		t.Fatalf("forwarded protocols %q contain the token", c.Protocols)
	}
	var all []byte
	for _, f := range fs {
		if httphead.EqualFold(f.Name, "Sec-WebSocket-Protocol") {
			all = append(append(all, f.Value...), ',')
		}
	}
	if c.Source == SourceSubprotocol && !strings.ContainsAny(c.Token, ", \t") &&
		bytes.Count(all, []byte(c.Token)) == 1 && bytes.Contains(c.Protocols, []byte(c.Token)) {
		t.Fatalf("forwarded protocols %q contain the token %q", c.Protocols, c.Token)
	}
}

// FuzzVerify feeds Verify random tokens: it must never panic, and every
// refusal must be one of the package's errors.
func FuzzVerify(f *testing.F) {
	f.Add(sign(f, jwt.SigningMethodHS256, testSecret, "", claims()))
	f.Add(sign(f, jwt.SigningMethodHS256, testSecret, "k", with(claims(), "exp", "x")))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims()))
	f.Add(rawToken(`{"alg":"HS256","crit":["b64"]}`, `{"sub":1}`, "AA"))
	f.Add("a.b.c")

	a := newTestAuth(f, Options{SecretFile: writeFile(f, "secret", testSecret)}, nil)
	f.Fuzz(func(t *testing.T, token string) {
		user, err := a.Verify(token)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			if user != "" {
				t.Fatalf("refusal came with user %q", user)
			}
		} else if user == "" {
			t.Fatal("accepted without a user")
		}
	})
}
