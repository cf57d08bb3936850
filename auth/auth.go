package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/internal/httphead"
)

// Authenticator finds and verifies the JWTs of WebSocket upgrade requests.
// It is safe for concurrent use. Create one with New and stop its
// background JWKS refresh with Close.
type Authenticator struct {
	opts   Options
	static []key      // from SecretFile, PublicKeyFile and JWKSFile; fixed after New
	remote *remoteSet // from JWKSURL; nil without one
	parser *jwt.Parser
	keyFn  jwt.Keyfunc // a.keyFor, bound once so Verify does not allocate it

	ctx    context.Context // ends background and on-demand JWKS fetches
	cancel context.CancelFunc
	stop   func() bool    // unregisters the cancel on New's ctx
	wg     sync.WaitGroup // the background refresh goroutine
}

// New loads the configured keys and returns an Authenticator. With
// opts.JWKSURL it fetches the set once before returning (an error if that
// fails) and then keeps refreshing it in the background until ctx is done
// or Close is called. Errors name the file or URL that failed.
func New(ctx context.Context, opts Options) (*Authenticator, error) {
	return newAuthenticator(ctx, opts, time.Now)
}

// newAuthenticator is New with the clock that token times and the
// unknown-key-ID rate limit are measured by.
func newAuthenticator(
	ctx context.Context, opts Options, now func() time.Time,
) (*Authenticator, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Authenticator{opts: opts}
	a.keyFn = a.keyFor
	popts := []jwt.ParserOption{
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	a.parser = jwt.NewParser(popts...)

	if err := a.loadStatic(); err != nil {
		return nil, err
	}
	if opts.JWKSURL != "" {
		a.remote, err = newRemoteSet(ctx, opts.JWKSURL, &a.opts, now)
		if err != nil {
			return nil, err
		}
	}

	// Fetches after New keep ctx's values but not its deadline; ctx
	// ending, like Close, stops them.
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a.stop = context.AfterFunc(ctx, a.cancel)
	if a.remote != nil {
		a.wg.Go(func() { a.remote.run(a.ctx, opts.JWKSRefresh) })
	}
	return a, nil
}

// loadStatic reads the key files named in the options.
func (a *Authenticator) loadStatic() error {
	o := &a.opts
	if o.SecretFile != "" {
		k, err := loadSecret(o.SecretFile, o.Logger)
		if err != nil {
			return err
		}
		a.static = append(a.static, k)
	}
	if o.PublicKeyFile != "" {
		keys, err := loadPEM(o.PublicKeyFile)
		if err != nil {
			return err
		}
		a.static = append(a.static, keys...)
	}
	if o.JWKSFile != "" {
		keys, err := loadJWKSFile(o.JWKSFile, o.Logger)
		if err != nil {
			return err
		}
		a.static = append(a.static, keys...)
	}
	return nil
}

// Close stops the background JWKS refresh and waits for it to end. Keys
// already loaded stay usable, but unknown key IDs no longer trigger
// fetches. Close may be called more than once.
func (a *Authenticator) Close() {
	a.stop()
	a.cancel()
	a.wg.Wait()
}

// Required reports whether requests without a token are refused
// (Options.Required). When it is true and Extract finds no token, answer
// with ErrMissing.
func (a *Authenticator) Required() bool {
	return a.opts.Required
}

// Verify checks token's signature and claims and returns the user it
// names: the value of Options.UserClaim. A refusal is one of the shared
// *Error values with Code "invalid_token" (or "invalid_request" for a
// token over MaxTokenSize).
//
// The signature is checked before any claim, so a forged token is refused
// as bad_signature whatever its claims say. Then exp, nbf and iat are
// checked with Options.Leeway; a token without exp is accepted and lives
// as long as its key does.
func (a *Authenticator) Verify(token string) (user string, err error) {
	if len(token) > a.opts.MaxTokenSize {
		return "", errTooLarge
	}
	claims := jwt.MapClaims{}
	tok, err := a.parser.ParseWithClaims(token, claims, a.keyFn)
	if err != nil {
		return "", classify(tok, err)
	}
	user, _ = claims[a.opts.UserClaim].(string)
	if user == "" {
		return "", errMissingClaim
	}
	return user, nil
}

// keyFor picks the keys that may check tok: those that allow its alg and
// whose key ID matches (or that have none). A token whose key ID no key
// has triggers a rate-limited refresh of the JWKS URL first.
func (a *Authenticator) keyFor(tok *jwt.Token) (any, error) {
	alg, _ := tok.Header["alg"].(string)
	if alg == "none" {
		return nil, errAlgNone
	}
	if _, ok := tok.Header["crit"]; ok {
		// RFC 7515 section 4.1.11: extensions the recipient does not
		// understand must be refused, and we understand none.
		return nil, errMalformed
	}
	kid, ok := tok.Header["kid"].(string)
	if !ok && tok.Header["kid"] != nil {
		return nil, errMalformed
	}
	bit := algBit(alg)
	if bit == 0 {
		return nil, errAlgNotAllowed
	}

	if kid != "" && a.remote != nil && !a.hasKID(kid) {
		a.remote.refreshUnknown(a.ctx)
	}
	return a.candidates(bit, kid)
}

// hasKID reports whether any key carries the key ID kid.
func (a *Authenticator) hasKID(kid string) bool {
	for _, keys := range [2][]key{a.static, a.remoteKeys()} {
		for i := range keys {
			if keys[i].kid == kid {
				return true
			}
		}
	}
	return false
}

// remoteKeys returns the current JWKS URL keys, or nil without a URL.
func (a *Authenticator) remoteKeys() []key {
	if a.remote == nil {
		return nil
	}
	return a.remote.current()
}

// candidates returns the key, or a jwt.VerificationKeySet of the keys, that
// may check a token with algorithm bit and key ID kid. A token with a kid
// meets the keys with that ID or, when there are none, the keys without an
// ID; a token without one meets every key. With no candidate the refusal
// says whether a key was there but for another algorithm (alg_not_allowed,
// which is where an HS256 token against an RSA key ends) or no key fitted
// at all (unknown_key).
func (a *Authenticator) candidates(bit algSet, kid string) (any, error) {
	var c keyChoice
	if kid == "" {
		c.collectAll(a.static, bit)
		c.collectAll(a.remoteKeys(), bit)
	} else {
		c.collect(a.static, bit, kid)
		c.collect(a.remoteKeys(), bit, kid)
		if !c.matched {
			c.collect(a.static, bit, "")
			c.collect(a.remoteKeys(), bit, "")
		}
	}

	switch {
	case c.more != nil:
		return jwt.VerificationKeySet{Keys: c.more}, nil
	case c.first != nil:
		return c.first, nil
	case c.matched:
		return nil, errAlgNotAllowed
	}
	return nil, errUnknownKey
}

// keyChoice gathers candidate keys without allocating for the usual single
// one.
type keyChoice struct {
	first   any                   // the first candidate
	more    []jwt.VerificationKey // all candidates, once there is a second
	matched bool                  // some key fitted the key ID, whatever its algorithms
}

// collect adds the keys that allow an algorithm in bit and whose ID is
// kid; with kid empty, only those without an ID.
func (c *keyChoice) collect(keys []key, bit algSet, kid string) {
	for i := range keys {
		k := &keys[i]
		if k.kid != kid {
			continue
		}
		c.add(k, bit)
	}
}

// collectAll adds every key that allows an algorithm in bit.
func (c *keyChoice) collectAll(keys []key, bit algSet) {
	for i := range keys {
		c.add(&keys[i], bit)
	}
}

// add records that k fitted the key ID, and takes it if it allows bit.
func (c *keyChoice) add(k *key, bit algSet) {
	c.matched = true
	switch {
	case k.algs&bit == 0:
	case c.first == nil:
		c.first = k.pub
	case c.more == nil:
		c.more = []jwt.VerificationKey{c.first, k.pub}
	default:
		c.more = append(c.more, k.pub)
	}
}

// classify maps an error from the jwt parser to one of our refusals.
func classify(tok *jwt.Token, err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// The header names no algorithm, or one the jwt package does not
		// know; "None" and "NONE" get the same answer as "none".
		if tok != nil {
			alg, ok := tok.Header["alg"].(string)
			if !ok {
				return errMalformed
			}
			if strings.EqualFold(alg, "none") {
				return errAlgNone
			}
		}
		return errAlgNotAllowed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errBadSignature
	}

	// Claims: one token may fail several checks; report the first in this
	// order, which puts a claim of the wrong type first.
	switch {
	case errors.Is(err, jwt.ErrInvalidType):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errMissingClaim
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errWrongAudience
	}
	return errMalformed
}

// Authenticate finds and verifies r's token. A request without one is
// anonymous (user "") unless a token is required; any refusal is an
// *Error to answer with 401.
func (a *Authenticator) Authenticate(r *httphead.Request) (user string, c Credential, err *Error) {
	c, found, xerr := a.Extract(r)
	if xerr == nil && !found && a.Required() {
		xerr = ErrMissing
	}
	if xerr == nil && found {
		if user, xerr = a.Verify(c.Token); xerr == nil {
			return user, c, nil
		}
	}
	if xerr == nil {
		return "", c, nil
	}
	if !errors.As(xerr, &err) {
		err = &Error{Code: "invalid_token", Reason: "malformed"}
	}
	return "", c, err
}
