package auth

import (
	"bytes"
	"net/url"

	"github.com/wsguard/wsguard/internal/httphead"
)

// The subprotocol convention for browsers, which cannot set Authorization
// on a WebSocket: the client offers BearerProtocol and an entry made of
// BearerPrefix and the token in Sec-WebSocket-Protocol.
const (
	BearerProtocol = "wsguard.bearer"
	BearerPrefix   = "bearer."
)

// Credential is the token Extract found and how the request must change
// before it goes upstream, so that no token reaches the backend through
// the query or the subprotocol list.
type Credential struct {
	// Token is the token as sent, percent-decoded when it came from the
	// query. Empty when Extract found none.
	Token string

	// Source is where Token came from.
	Source Source

	// Target is the request target to forward in place of the client's:
	// the client's with the token parameter removed and every other byte
	// of it, the order and encoding of the other parameters included, kept.
	// It is set only when SourceQuery is configured and the parameter was
	// present; nil means forward the target unchanged.
	Target []byte

	// Protocols is the Sec-WebSocket-Protocol value to forward in place of
	// all of the client's Sec-WebSocket-Protocol lines: the client's
	// entries, in order, less BearerProtocol and the BearerPrefix entries.
	// It is set only when SourceSubprotocol is configured and one of those
	// entries was present. Nil means forward the lines unchanged; empty and
	// non-nil means forward none.
	Protocols []byte

	// Echo is the subprotocol to answer the client with when the upstream
	// selects none: BearerProtocol when the client offered it, since a
	// browser fails a handshake whose offered protocols get no answer. The
	// relay must still pass through a protocol the upstream selects.
	// Empty when the client did not offer BearerProtocol.
	Echo string
}

// Extract looks for a token in the configured sources. The first source
// in Options.Sources that carries one wins, and found reports whether any
// did. Every configured source is still examined, so that a token in the
// query or the subprotocol list is removed from what goes upstream (see
// Credential) even when another source's token is used, and so that a
// malformed source refuses the request wherever it comes in the order.
// The Target, Protocols and Echo of c apply whether or not found is true.
//
// A refusal is a shared *Error with Code "invalid_request" and Reason
// "too_large" for a token over Options.MaxTokenSize, or "malformed" for
//
//   - more than one Authorization line, or a Bearer one whose credentials
//     are not one b64token (RFC 6750 section 2.1)
//   - the query parameter given twice, or with no value or a bad
//     percent-encoding, or hidden in a ';'-separated pair
//   - the cookie given twice, or empty
//   - two BearerPrefix entries, or one with nothing after the prefix
//
// An Authorization line with another scheme, such as Basic, is not a
// token and is left for the upstream.
//
// Extract does not verify the token: pass c.Token to Verify. It does not
// modify r, and c aliases none of r's bytes.
func (a *Authenticator) Extract(r *httphead.Request) (c Credential, found bool, err error) {
	for _, s := range a.opts.Sources {
		var tok []byte
		var ok bool
		switch s {
		case SourceHeader:
			tok, ok, err = fromHeader(r.Fields)
		case SourceQuery:
			tok, c.Target, ok, err = fromQuery(r.Target, a.opts.QueryParam)
		case SourceCookie:
			tok, ok, err = fromCookie(r.Fields, a.opts.Cookie)
		case SourceSubprotocol:
			tok, c.Protocols, c.Echo, ok, err = fromSubprotocol(r.Fields)
		}
		if err != nil {
			return Credential{}, false, err
		}
		if !ok {
			continue
		}
		if len(tok) > a.opts.MaxTokenSize {
			return Credential{}, false, errTooLarge
		}
		if !found {
			c.Token, c.Source, found = string(tok), s, true
		}
	}
	return c, found, nil
}

// fromHeader finds a token in "Authorization: Bearer <token>". The scheme
// is case-insensitive (RFC 9110 section 11.1).
func fromHeader(fs httphead.Fields) (tok []byte, found bool, err error) {
	switch fs.Count("Authorization") {
	case 0:
		return nil, false, nil
	case 1:
	default:
		return nil, false, errRequestMalformed
	}

	v := fs.Get("Authorization")
	scheme, rest, _ := bytes.Cut(v, []byte{' '})
	if !httphead.EqualFold(scheme, "Bearer") {
		return nil, false, nil
	}
	rest = bytes.TrimLeft(rest, " ")
	if !isB64Token(rest) {
		return nil, false, errRequestMalformed
	}
	return rest, true, nil
}

// fromQuery finds the parameter param in target's query, decoding it as
// url.ParseQuery would, and returns the target without it.
func fromQuery(target []byte, param string) (tok, rest []byte, found bool, err error) {
	path, query, ok := bytes.Cut(target, []byte{'?'})
	if !ok {
		return nil, nil, false, nil
	}

	for pair := range bytes.SplitSeq(query, []byte{'&'}) {
		is, err := isParam(pair, param)
		switch {
		case err != nil:
			return nil, nil, false, err
		case !is:
			continue
		case found:
			return nil, nil, false, errRequestMalformed
		}
		_, value, _ := bytes.Cut(pair, []byte{'='})
		v, err := url.QueryUnescape(string(value))
		if err != nil || v == "" {
			return nil, nil, false, errRequestMalformed
		}
		tok, found = []byte(v), true
	}
	if !found {
		return nil, nil, false, nil
	}

	// Cut out the parameter's pair; every other byte stays as sent.
	q := make([]byte, 0, len(query))
	first := true
	for pair := range bytes.SplitSeq(query, []byte{'&'}) {
		if is, _ := isParam(pair, param); is {
			continue
		}
		if !first {
			q = append(q, '&')
		}
		q, first = append(q, pair...), false
	}
	rest = append(make([]byte, 0, len(target)), path...)
	if len(q) > 0 {
		rest = append(append(rest, '?'), q...)
	}
	return tok, rest, true, nil
}

// isParam reports whether a raw query pair is the parameter param. A pair
// holding a ';' is not, since url.ParseQuery skips it; but if a server
// that also splits pairs on ';' would find param in it, the request is
// refused, as that server would see a token nobody checked.
func isParam(pair []byte, param string) (bool, error) {
	if bytes.IndexByte(pair, ';') >= 0 {
		if semicolonHides(pair, param) {
			return false, errRequestMalformed
		}
		return false, nil
	}
	name, _, _ := bytes.Cut(pair, []byte{'='})
	return queryNameIs(name, param), nil
}

// semicolonHides reports whether a query pair that holds a ';' would
// yield param to a server that also separates pairs with ';'.
func semicolonHides(pair []byte, param string) bool {
	for sub := range bytes.SplitSeq(pair, []byte{';'}) {
		name, _, _ := bytes.Cut(sub, []byte{'='})
		if queryNameIs(name, param) {
			return true
		}
	}
	return false
}

// queryNameIs reports whether the raw query name decodes to param.
func queryNameIs(name []byte, param string) bool {
	if bytes.IndexByte(name, '%') < 0 && bytes.IndexByte(name, '+') < 0 {
		return string(name) == param
	}
	n, err := url.QueryUnescape(string(name))
	return err == nil && n == param
}

// fromCookie finds the cookie called name in any Cookie line (RFC 6265
// section 5.4). Names are case-sensitive; a value in double quotes loses
// them.
func fromCookie(fs httphead.Fields, name string) (tok []byte, found bool, err error) {
	for _, f := range fs {
		if !httphead.EqualFold(f.Name, "Cookie") {
			continue
		}
		for pair := range bytes.SplitSeq(f.Value, []byte{';'}) {
			n, v, ok := bytes.Cut(trimOWS(pair), []byte{'='})
			if !ok || string(trimOWS(n)) != name {
				continue
			}
			if found {
				return nil, false, errRequestMalformed
			}
			v = trimOWS(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if len(v) == 0 {
				return nil, false, errRequestMalformed
			}
			tok, found = v, true
		}
	}
	return tok, found, nil
}

// fromSubprotocol finds a BearerPrefix entry in the Sec-WebSocket-Protocol
// lines and, if it or BearerProtocol is there, returns the list to forward
// without them. Entries are case-sensitive (RFC 6455 section 4.1).
func fromSubprotocol(
	fs httphead.Fields,
) (tok, protocols []byte, echo string, found bool, err error) {
	changed := false
	for _, f := range fs {
		if !httphead.EqualFold(f.Name, "Sec-WebSocket-Protocol") {
			continue
		}
		for e := range bytes.SplitSeq(f.Value, []byte{','}) {
			e = trimOWS(e)
			switch {
			case string(e) == BearerProtocol:
				echo, changed = BearerProtocol, true
			case bytes.HasPrefix(e, []byte(BearerPrefix)):
				if found || len(e) == len(BearerPrefix) {
					return nil, nil, "", false, errRequestMalformed
				}
				tok, found, changed = e[len(BearerPrefix):], true, true
			}
		}
	}
	if !changed {
		return nil, nil, "", false, nil
	}
	return tok, keptProtocols(fs), echo, found, nil
}

// keptProtocols joins the Sec-WebSocket-Protocol entries that are neither
// BearerProtocol nor BearerPrefix ones, nor empty. The result is never nil.
func keptProtocols(fs httphead.Fields) []byte {
	out := []byte{}
	for _, f := range fs {
		if !httphead.EqualFold(f.Name, "Sec-WebSocket-Protocol") {
			continue
		}
		for e := range bytes.SplitSeq(f.Value, []byte{','}) {
			e = trimOWS(e)
			if len(e) == 0 || isBearerEntry(e) {
				continue
			}
			if len(out) > 0 {
				out = append(out, ", "...)
			}
			out = append(out, e...)
		}
	}
	return out
}

// isBearerEntry reports whether a subprotocol entry belongs to the
// convention: BearerProtocol or a BearerPrefix entry.
func isBearerEntry(e []byte) bool {
	return string(e) == BearerProtocol || bytes.HasPrefix(e, []byte(BearerPrefix))
}

// isB64Token reports whether b is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(b []byte) bool {
	i := 0
	for i < len(b) && isB64Char(b[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(b); i++ {
		if b[i] != '=' {
			return false
		}
	}
	return true
}

// isB64Char reports whether c may appear in a b64token before the padding.
func isB64Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// isToken reports whether s is an RFC 9110 token, as a cookie name must be.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return len(s) > 0
}

// trimOWS removes spaces and tabs from both ends of b.
func trimOWS(b []byte) []byte {
	return bytes.Trim(b, " \t")
}
