package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Source is a place in the upgrade request where a token may travel.
type Source uint8

// The token sources. See the package documentation for the syntax of each.
const (
	SourceHeader      Source = iota + 1 // Authorization: Bearer <token>
	SourceQuery                         // ?access_token=<token>
	SourceCookie                        // Cookie: access_token=<token>
	SourceSubprotocol                   // Sec-WebSocket-Protocol: wsguard.bearer, bearer.<token>
)

// sourceNames are the String values of the sources, indexed by Source.
var sourceNames = [...]string{
	SourceHeader:      "header",
	SourceQuery:       "query",
	SourceCookie:      "cookie",
	SourceSubprotocol: "subprotocol",
}

// String returns the source's name as ParseSource accepts it: "header",
// "query", "cookie" or "subprotocol".
func (s Source) String() string {
	if int(s) < len(sourceNames) && sourceNames[s] != "" {
		return sourceNames[s]
	}
	return fmt.Sprintf("Source(%d)", uint8(s))
}

// ParseSource returns the source called name, as written in configuration.
func ParseSource(name string) (Source, error) {
	for s, n := range sourceNames {
		if n != "" && n == name {
			return Source(s), nil
		}
	}
	return 0, fmt.Errorf("auth: unknown token source %q "+
		"(want header, query, cookie or subprotocol)", name)
}

// Options configures an Authenticator. At least one key source
// (SecretFile, PublicKeyFile, JWKSFile or JWKSURL) must be set; when
// several are, a token may be signed by any of their keys.
//
// The zero value of every other field is a safe default, given per field.
type Options struct {
	// Required refuses requests that carry no token. When false, such
	// requests pass as anonymous, but a token that is present is still
	// verified and a bad one refused.
	Required bool

	// SecretFile holds an HMAC secret for HS256, HS384 and HS512: the
	// file's bytes, less one trailing newline.
	SecretFile string

	// PublicKeyFile holds one or more PEM public keys or certificates:
	// RSA (RS256/384/512, PS256/384/512), ECDSA on P-256, P-384 or P-521
	// (ES256, ES384, ES512 respectively) or Ed25519 (EdDSA).
	PublicKeyFile string

	// JWKSFile holds a JSON Web Key Set (RFC 7517), read once by New.
	JWKSFile string

	// JWKSURL is fetched by New, then again every JWKSRefresh and when a
	// token names a key ID the set lacks. A failed fetch keeps the keys
	// of the last good one.
	JWKSURL string

	// JWKSRefresh is the time between fetches of JWKSURL. Zero means
	// 5 minutes.
	JWKSRefresh time.Duration

	// UnknownKIDRefresh is the least time between the extra fetches of
	// JWKSURL that tokens with an unknown key ID trigger, so a stream of
	// made-up key IDs costs the key server at most one request per
	// interval. Zero means 30 seconds; a negative value turns these
	// fetches off.
	UnknownKIDRefresh time.Duration

	// Issuer and Audience, when set, must match the token's iss claim and
	// one of its aud values; a token without the claim is refused.
	Issuer, Audience string

	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Zero allows none.
	Leeway time.Duration

	// UserClaim names the claim that identifies the user; it must be a
	// non-empty string. Empty means "sub".
	UserClaim string

	// MaxTokenSize is the largest token accepted, in bytes. Zero means
	// 4096.
	MaxTokenSize int

	// Sources lists where Extract looks for a token, in order. Nil means
	// SourceHeader, then SourceQuery.
	Sources []Source

	// QueryParam is the query parameter for SourceQuery. Empty means
	// "access_token" (RFC 6750 section 2.3).
	QueryParam string

	// Cookie is the cookie name for SourceCookie. Empty means
	// "access_token".
	Cookie string

	// HTTPClient fetches JWKSURL. Nil means a client with a 10 second
	// timeout.
	HTTPClient *http.Client

	// Logger receives key-loading warnings and refresh failures. Nil
	// discards them. Verification failures are never logged here: they are
	// returned, for the caller to count and sample.
	Logger *slog.Logger
}

// The defaults of Options.
const (
	defaultJWKSRefresh       = 5 * time.Minute
	defaultUnknownKIDRefresh = 30 * time.Second
	defaultUserClaim         = "sub"
	defaultMaxTokenSize      = 4096
	defaultParam             = "access_token"
	defaultHTTPTimeout       = 10 * time.Second
)

// withDefaults returns a copy of o with every zero field that has a
// default filled in, and checks what cannot be defaulted.
func (o Options) withDefaults() (Options, error) {
	if o.SecretFile == "" && o.PublicKeyFile == "" && o.JWKSFile == "" && o.JWKSURL == "" {
		return o, errors.New("auth: no key source: set a secret file, " +
			"a public key file, a JWKS file or a JWKS URL")
	}
	if o.JWKSRefresh < 0 || o.Leeway < 0 || o.MaxTokenSize < 0 {
		return o, errors.New("auth: negative JWKS refresh, leeway or maximum token size")
	}
	if o.JWKSURL != "" {
		if err := checkURL(o.JWKSURL); err != nil {
			return o, err
		}
	}

	if o.JWKSRefresh == 0 {
		o.JWKSRefresh = defaultJWKSRefresh
	}
	if o.UnknownKIDRefresh == 0 {
		o.UnknownKIDRefresh = defaultUnknownKIDRefresh
	}
	if o.UserClaim == "" {
		o.UserClaim = defaultUserClaim
	}
	if o.MaxTokenSize == 0 {
		o.MaxTokenSize = defaultMaxTokenSize
	}
	if o.QueryParam == "" {
		o.QueryParam = defaultParam
	}
	if o.Cookie == "" {
		o.Cookie = defaultParam
	}
	if !isToken(o.Cookie) {
		return o, fmt.Errorf("auth: cookie name %q is not a token", o.Cookie)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}

	if len(o.Sources) == 0 {
		o.Sources = []Source{SourceHeader, SourceQuery}
	} else {
		o.Sources = append([]Source(nil), o.Sources...)
	}
	return o, checkSources(o.Sources)
}

// checkSources refuses unknown and repeated sources.
func checkSources(sources []Source) error {
	var seen [len(sourceNames)]bool
	for _, s := range sources {
		if s == 0 || int(s) >= len(sourceNames) {
			return fmt.Errorf("auth: unknown token source %d", s)
		}
		if seen[s] {
			return fmt.Errorf("auth: token source %s listed twice", s)
		}
		seen[s] = true
	}
	return nil
}

// checkURL refuses a JWKS URL that is not absolute http or https.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("auth: parsing JWKS URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("auth: JWKS URL %s: want an absolute http or https URL", raw)
	}
	return nil
}
