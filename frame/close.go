package frame

import (
	"encoding/binary"
	"unicode/utf8"
)

// Close status codes used by wsguard (RFC 6455 section 7.4.1).
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupported     uint16 = 1003
	CloseNoStatus        uint16 = 1005 // never sent; an empty close payload
	CloseAbnormal        uint16 = 1006 // never sent; the connection dropped
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseTooBig          uint16 = 1009
	CloseInternalError   uint16 = 1011
	CloseTryAgainLater   uint16 = 1013
)

// ValidCloseCode reports whether code may appear in a close frame on the
// wire: the codes RFC 6455 and the IANA registry define for use, and the
// 3000-4999 ranges for libraries and applications.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// AppendClosePayload appends a close frame payload with code and reason
// to dst. The reason is cut, on a UTF-8 boundary, to fit the 125-byte
// control frame limit.
func AppendClosePayload(dst []byte, code uint16, reason string) []byte {
	const max = MaxControlPayload - 2
	if len(reason) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}

// ParseClosePayload decodes an unmasked close frame payload. An empty
// payload yields CloseNoStatus. A one-byte payload, a code that may not
// be sent, or a reason that is not UTF-8 is an error.
func ParseClosePayload(p []byte) (code uint16, reason string, err error) {
	switch {
	case len(p) == 0:
		return CloseNoStatus, "", nil
	case len(p) == 1:
		return 0, "", ErrBadClosePayload
	}
	code = binary.BigEndian.Uint16(p)
	if !ValidCloseCode(code) {
		return 0, "", ErrInvalidCloseCode
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &ProtocolError{Reason: "close reason is not UTF-8", code: CloseInvalidPayload}
	}
	return code, string(p[2:]), nil
}
