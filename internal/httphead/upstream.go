package httphead

// hopByHop lists the fields that describe one connection rather than the
// request (RFC 9110 section 7.6.1, plus the old Keep-Alive and
// Proxy-Connection), so a proxy never forwards them.
var hopByHop = [...]string{
	"Connection",
	"Upgrade",
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"TE",
	"Trailer",
	"Transfer-Encoding",
}

// forwarding lists the fields that say who the client is. A client can
// send any value, so its own are dropped and the gateway writes the ones it
// can vouch for.
var forwarding = [...]string{
	"X-Forwarded-For",
	"X-Forwarded-Proto",
	"X-Forwarded-Host",
	"X-Real-IP",
	"Forwarded",
}

// handshakeFields lists the end-to-end fields the upstream needs to complete
// the WebSocket handshake. Naming one in Connection does not remove it: that
// would only let an admitted client hand the upstream a request it must
// refuse.
var handshakeFields = [...]string{
	"Host",
	"Sec-WebSocket-Key",
	"Sec-WebSocket-Version",
}

// Forward says how an admitted request goes upstream: the values the
// gateway vouches for, and the changes it makes to the client's request.
type Forward struct {
	Target       []byte // request target, usually r.Target or a rewritten one
	ForwardedFor string // X-Forwarded-For: the accepted chain, client first
	RealIP       string // X-Real-IP: the decided client address
	Proto        string // X-Forwarded-Proto
	// Protocols, when not nil, replaces every Sec-WebSocket-Protocol line
	// of the request; an empty non-nil value drops the field.
	Protocols []byte
	// UserHeader names a field the gateway owns: the client's lines of
	// that name are dropped, and User is written in it when not empty.
	UserHeader string
	User       string
}

// AppendUpstreamRequest appends to dst the request head to send upstream
// for an admitted upgrade, and returns the extended slice. It writes:
//
//   - the request line "GET <f.Target> HTTP/1.1"
//   - every field of r in its original order and spelling, except the
//     hop-by-hop ones (Connection, Upgrade, Keep-Alive, Proxy-Connection,
//     Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
//     Transfer-Encoding), any field a Connection line names (other than
//     Host, Sec-WebSocket-Key and Sec-WebSocket-Version), the forwarding
//     fields X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host,
//     X-Real-IP and Forwarded, whose client-sent values are replaced,
//     never appended to, f.UserHeader, and Sec-WebSocket-Protocol when
//     f.Protocols replaces it
//   - "Connection: Upgrade" and "Upgrade: websocket"
//   - Sec-WebSocket-Protocol from f.Protocols, X-Forwarded-For,
//     X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host (r's Host), and
//     f.UserHeader; each is left out when its value is empty
//   - the empty line that ends the head
//
// Host, Origin, Cookie, the other Sec-WebSocket-* fields and all other
// fields pass through unchanged.
//
// AppendUpstreamRequest never lets its arguments split the head: bytes that
// cannot appear where they are written (a space or control byte in target,
// a control byte in a value) are dropped, a field whose name is not a token
// is skipped, and an empty target becomes "/". None of this happens to a
// Request from ParseRequest and the caller's own well-formed values.
func AppendUpstreamRequest(dst []byte, r *Request, f *Forward) []byte {
	dst = append(dst, "GET "...)
	start := len(dst)
	dst = appendClean(dst, f.Target, &targetChars)
	if len(dst) == start {
		dst = append(dst, '/')
	}
	dst = append(dst, " HTTP/1.1\r\n"...)

	for _, fl := range r.Fields {
		switch {
		case !isToken(fl.Name) || dropUpstream(r.Fields, fl.Name):
		case f.Protocols != nil && equalFold(fl.Name, "Sec-WebSocket-Protocol"):
		case f.UserHeader != "" && equalFold(fl.Name, f.UserHeader):
		default:
			dst = appendField(dst, fl.Name, fl.Value)
		}
	}

	dst = append(dst, "Connection: Upgrade\r\nUpgrade: websocket\r\n"...)
	dst = appendNonEmpty(dst, "Sec-WebSocket-Protocol", f.Protocols)
	dst = appendNonEmpty(dst, "X-Forwarded-For", f.ForwardedFor)
	dst = appendNonEmpty(dst, "X-Real-IP", f.RealIP)
	dst = appendNonEmpty(dst, "X-Forwarded-Proto", f.Proto)
	dst = appendNonEmpty(dst, "X-Forwarded-Host", r.Get("Host"))
	if f.UserHeader != "" && isToken([]byte(f.UserHeader)) {
		dst = appendNonEmpty(dst, f.UserHeader, f.User)
	}
	return append(dst, "\r\n"...)
}

// dropUpstream reports whether the field called name stays behind.
func dropUpstream(fs Fields, name []byte) bool {
	if inList(name, hopByHop[:]) || inList(name, forwarding[:]) {
		return true
	}
	if inList(name, handshakeFields[:]) {
		return false
	}
	return hasToken(fs, "Connection", name)
}

// inList reports whether name is one of names, ignoring ASCII case.
func inList(name []byte, names []string) bool {
	for _, n := range names {
		if equalFold(name, n) {
			return true
		}
	}
	return false
}

// appendNonEmpty is appendField, but appends nothing if value is empty.
func appendNonEmpty[V ~string | ~[]byte](dst []byte, name string, value V) []byte {
	if len(value) == 0 {
		return dst
	}
	return appendField(dst, name, value)
}

// appendField appends "name: value" and CRLF, dropping control bytes from
// value.
func appendField[N, V ~string | ~[]byte](dst []byte, name N, value V) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = appendClean(dst, value, &valueChars)
	return append(dst, "\r\n"...)
}

// appendClean appends the bytes of src that keep marks true. The common
// case, where it marks all of them, is a single copy.
func appendClean[T ~string | ~[]byte](dst []byte, src T, keep *[256]bool) []byte {
	for i := 0; i < len(src); i++ {
		if !keep[src[i]] {
			return appendFiltered(append(dst, src[:i]...), src[i:], keep)
		}
	}
	return append(dst, src...)
}

// appendFiltered appends the bytes of src that keep marks true, one by one.
func appendFiltered[T ~string | ~[]byte](dst []byte, src T, keep *[256]bool) []byte {
	for i := 0; i < len(src); i++ {
		if keep[src[i]] {
			dst = append(dst, src[i])
		}
	}
	return dst
}

// targetChars and valueChars tabulate isTargetChar and isValueChar.
var targetChars, valueChars = tabulate(isTargetChar), tabulate(isValueChar)

func tabulate(f func(byte) bool) (t [256]bool) {
	for c := range t {
		t[c] = f(byte(c))
	}
	return t
}
