package httphead

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
)

// Reject describes a handshake refusal: the HTTP status to answer with, a
// one-line reason to send as the text/plain body, and optionally one extra
// response header. Reasons are fixed phrases that never echo request bytes.
type Reject struct {
	Status int    // 400, or 426 for an unsupported WebSocket version
	Reason string // e.g. "invalid Sec-WebSocket-Key"
	Header string // extra response header name, empty if none
	Value  string // value of Header
}

// Error returns the status and reason, so a Reject can travel as an error.
func (r *Reject) Error() string {
	return "httphead: handshake refused with " + strconv.Itoa(r.Status) + ": " + r.Reason
}

// reject returns a fresh 400 Reject; callers may modify what they get.
func reject(reason string) *Reject {
	return &Reject{Status: 400, Reason: reason}
}

// websocketGUID is appended to the client's key to form the accept value
// (RFC 6455 section 1.3).
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// strictBase64 refuses encodings with non-zero padding bits, so each key
// has one spelling. Built once: Strict copies the encoding on every call.
var strictBase64 = base64.StdEncoding.Strict()

// ValidateUpgrade checks that r is a WebSocket opening handshake as RFC 6455
// section 4.2.1 defines it, and returns nil if so. Otherwise it returns the
// refusal to send, checking in this order:
//
//   - method GET, HTTP/1.1 or a later 1.x version (400)
//   - an origin-form target: starts with "/", holds no '#' (400)
//   - exactly one Host line, non-empty, of host and port characters (400)
//   - no request body: no Transfer-Encoding, no Content-Length but one
//     "0" (400); a body on an upgrade is a request-smuggling vector
//   - Upgrade listing "websocket" and Connection listing "upgrade" (400)
//   - exactly one Sec-WebSocket-Key, the padded base64 of 16 bytes (400)
//   - exactly one Sec-WebSocket-Version, equal to "13" (426, with the
//     header "Sec-WebSocket-Version: 13" naming the version we speak)
//
// ValidateUpgrade allocates only when it refuses.
func ValidateUpgrade(r *Request) *Reject {
	if string(r.Method) != "GET" {
		return reject("not a websocket upgrade: method must be GET")
	}
	if r.Major != 1 || r.Minor < 1 {
		return reject("not a websocket upgrade: HTTP/1.1 required")
	}
	if len(r.Target) == 0 || r.Target[0] != '/' || bytes.IndexByte(r.Target, '#') >= 0 {
		return reject("invalid request target")
	}
	if rj := validateHost(r.Fields); rj != nil {
		return rj
	}

	// Refuse any framing of a body: front and back ends that disagree on
	// where it ends are how requests are smuggled.
	if r.Count("Transfer-Encoding") > 0 || r.Count("Content-Length") > 1 {
		return reject("unexpected request body")
	}
	if cl := r.Get("Content-Length"); cl != nil && string(cl) != "0" {
		return reject("unexpected request body")
	}

	if !r.HasToken("Upgrade", "websocket") || !r.HasToken("Connection", "upgrade") {
		return reject("not a websocket upgrade")
	}
	if r.Count("Sec-WebSocket-Key") != 1 || !validKey(r.Get("Sec-WebSocket-Key")) {
		return reject("invalid Sec-WebSocket-Key")
	}
	if r.Count("Sec-WebSocket-Version") != 1 || string(r.Get("Sec-WebSocket-Version")) != "13" {
		return &Reject{
			Status: 426,
			Reason: "unsupported websocket version",
			Header: "Sec-WebSocket-Version",
			Value:  "13",
		}
	}
	return nil
}

// validateHost checks for exactly one non-empty Host line made of the
// characters of a URI host and port (RFC 3986 section 3.2.2).
func validateHost(fs Fields) *Reject {
	switch fs.Count("Host") {
	case 0:
		return reject("missing host header")
	case 1:
	default:
		return reject("duplicate host header")
	}

	host := fs.Get("Host")
	if len(host) == 0 {
		return reject("invalid host header")
	}
	for _, c := range host {
		if !isHostChar(c) {
			return reject("invalid host header")
		}
	}
	return nil
}

// isHostChar reports whether c may appear in a Host value: unreserved,
// sub-delims, '%' for escapes, ':' for the port, brackets for IPv6.
func isHostChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '%', ':', '[', ']',
		'!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

// validKey reports whether key is the padded standard base64 encoding of
// exactly 16 bytes (RFC 6455 section 4.1), spelled canonically.
func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := strictBase64.Decode(raw[:], key)
	return err == nil && n == 16
}

// AcceptKey returns the Sec-WebSocket-Accept value for a client's
// Sec-WebSocket-Key: the base64 of the SHA-1 of the key followed by the
// RFC 6455 GUID (section 4.2.2). key is used as sent, without trimming.
func AcceptKey(key []byte) string {
	var buf [24 + len(websocketGUID)]byte
	b := append(buf[:0], key...)
	b = append(b, websocketGUID...)
	sum := sha1.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}
