// Package auth authenticates WebSocket upgrade requests by JWT, on the raw
// request head and before the upgrade, so a client without a valid token
// is refused with a canned 401 and never costs an upstream connection.
//
// An Authenticator does two things. Extract finds the token in the
// request and says how the request must change before it goes upstream;
// Verify checks the token and returns the user it names:
//
//	c, found, err := a.Extract(&req)
//	if err == nil && !found && a.Required() {
//		err = auth.ErrMissing
//	}
//	if err == nil && found {
//		user, err = a.Verify(c.Token)
//	}
//	var ae *auth.Error
//	if errors.As(err, &ae) {
//		// answer ae.Status() with WWW-Authenticate: ae.WWWAuthenticate()
//	}
//
// # Where the token travels
//
// Options.Sources lists the places Extract looks, in order; the first
// that carries a token wins. Each place may carry one token only: two are
// refused as invalid_request, never resolved by picking one.
//
//   - header: "Authorization: Bearer <token>" (RFC 6750 section 2.1), on
//     exactly one Authorization line. Other schemes are left alone.
//   - query: "?access_token=<token>" (RFC 6750 section 2.3), decoded as
//     url.ParseQuery would. The parameter is cut from the target that goes
//     upstream, so it does not reach the backend's access logs.
//   - cookie: "Cookie: access_token=<token>" in any Cookie line.
//   - subprotocol: entries of Sec-WebSocket-Protocol, described next.
//
// # Browsers and Sec-WebSocket-Protocol
//
// A browser cannot set Authorization on a WebSocket, and a token in the
// URL ends up in logs and history. The one header a page controls is
// Sec-WebSocket-Protocol, through the second argument of the WebSocket
// constructor. The client offers two extra entries there: BearerProtocol
// ("wsguard.bearer") and BearerPrefix followed by the token
// ("bearer.<JWT>"; a JWT is base64url parts joined by dots, all valid
// characters of a subprotocol name), beside its real protocols:
//
//	const ws = new WebSocket("wss://chat.example.com/room/7",
//		["wsguard.bearer", "bearer." + token, "chat.v1"]);
//	ws.onopen = () => console.log("protocol:", ws.protocol);
//
// The gateway removes both entries from the list it forwards
// (Credential.Protocols), so the backend sees only "chat.v1". If the
// backend selects a protocol, the client gets that answer. If it selects
// none, the gateway answers "wsguard.bearer" (Credential.Echo): a browser
// fails a handshake that offered protocols and got no answer. A
// "bearer.<JWT>" entry without "wsguard.bearer" is accepted too, but then
// there is nothing safe to echo, so such a client must not need an answer.
//
// # Keys and algorithms
//
// Keys come from an HMAC secret file, a PEM file of public keys or
// certificates, a JWKS file and a JWKS URL, in any combination. The key,
// never the token, decides which algorithms may be used with it:
//
//   - an HMAC secret allows HS256, HS384 and HS512
//   - an RSA key allows RS256, RS384, RS512, PS256, PS384 and PS512
//   - an ECDSA key allows the one algorithm of its curve: ES256 for P-256,
//     ES384 for P-384, ES512 for P-521
//   - an Ed25519 key allows EdDSA
//   - a JWK with an "alg" member allows that algorithm alone
//
// So an HS256 token made with an RSA public key as its secret, the classic
// algorithm confusion, meets no key that allows HS256 and is refused as
// alg_not_allowed; "alg": "none" is refused as alg_none. Keys named in the
// token's header (jwk, jku, x5u, x5c) are never used or fetched, and a
// header with "crit" is refused, since no extension is understood.
//
// A token with a "kid" is checked against the keys with that ID; when
// none has it, against the keys without an ID (secrets, PEM keys and JWKs
// that lack one). A token without a "kid" is checked against every key
// that allows its algorithm, so its cost grows with the number of keys.
//
// # Claims
//
// The signature is checked before any claim. Then exp, nbf and iat are
// checked with Options.Leeway; iat in the future counts as not_yet_valid.
// A token without exp is accepted: issuers that mint such tokens mean
// them to last, and refusing them would lock those users out. Issuer and
// Audience, when configured, are required claims. The user ID is the
// string claim Options.UserClaim ("sub" by default).
//
// # JWKS refresh
//
// A JWKS URL is fetched by New (which fails if it cannot be), then every
// Options.JWKSRefresh. A token whose kid no key has triggers one extra
// fetch, at most once per Options.UnknownKIDRefresh; requests that arrive
// during that fetch wait for it, the others are refused as unknown_key at
// once, so made-up key IDs cannot queue handshakes or flood the key
// server. A fetch that fails, or returns a set without a usable key,
// keeps the previous keys. Files are read once; reload them by building a
// new Authenticator.
//
// # Refusals
//
// Every refusal is an *Error carrying an RFC 6750 error code, a short
// fixed Reason for logs and metrics, the status (401) and the
// WWW-Authenticate value to answer with. The values are shared, so a
// flood of bad tokens allocates no errors.
//
// # Concurrency
//
// An Authenticator is safe for concurrent use. Extract and Verify never
// block, except that Verify may wait for one JWKS fetch as described
// above.
package auth
