package httphead

import "bytes"

// Field is one header line of a head. Name and Value are sub-slices of the
// head they were parsed from, so they stay valid only while that buffer is
// not reused. Value carries no leading or trailing spaces or tabs.
type Field struct {
	Name, Value []byte
}

// Fields is the ordered list of a head's header fields, one entry per line,
// in the order and spelling the peer sent them. Request and Response embed
// it, so its lookups are methods of both.
//
// Lookups compare names ASCII case-insensitively and never allocate.
type Fields []Field

// Get returns the value of the first field called name, or nil if there is
// none. A field that is present but empty gives an empty, non-nil slice.
func (fs Fields) Get(name string) []byte {
	for i := range fs {
		if equalFold(fs[i].Name, name) {
			return fs[i].Value
		}
	}
	return nil
}

// Count returns how many header lines are called name. Fields that must
// appear once, such as Host, are checked with Count rather than Get, since
// Get alone would hide a duplicate.
func (fs Fields) Count(name string) int {
	n := 0
	for i := range fs {
		if equalFold(fs[i].Name, name) {
			n++
		}
	}
	return n
}

// HasToken reports whether token is an element of the comma-separated list
// formed by all lines called name, as in "Connection: keep-alive, Upgrade".
// Elements are trimmed of spaces and tabs and compared ASCII
// case-insensitively. An empty token is never found.
func (fs Fields) HasToken(name, token string) bool {
	return hasToken(fs, name, token)
}

// hasToken is HasToken for a token of either string type, so that
// AppendUpstreamRequest can look up field names without converting them.
func hasToken[T ~string | ~[]byte](fs Fields, name string, token T) bool {
	if len(token) == 0 {
		return false
	}
	for i := range fs {
		if equalFold(fs[i].Name, name) && listHas(fs[i].Value, token) {
			return true
		}
	}
	return false
}

// listHas reports whether the comma-separated list holds token.
func listHas[T ~string | ~[]byte](list []byte, token T) bool {
	for len(list) > 0 {
		elem := list
		list = nil
		if i := bytes.IndexByte(elem, ','); i >= 0 {
			elem, list = elem[:i], elem[i+1:]
		}
		if equalFold(trimOWS(elem), token) {
			return true
		}
	}
	return false
}

// equalFold reports whether a and b are equal under ASCII case folding.
// Unlike bytes.EqualFold it leaves non-ASCII bytes alone: header names are
// ASCII tokens, and Unicode folding would let "K" (U+212A) match "k".
func equalFold[A, B ~string | ~[]byte](a A, b B) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// lower maps an ASCII upper-case letter to lower case.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// EqualFold reports whether a and b are equal under ASCII case folding,
// the comparison HTTP field names and tokens call for. Non-ASCII bytes
// must match exactly.
func EqualFold[A, B ~string | ~[]byte](a A, b B) bool { return equalFold(a, b) }

// IsTokenChar reports whether c may appear in an HTTP token (RFC 9110
// section 5.6.2).
func IsTokenChar(c byte) bool { return isTokenChar[c] }

// trimOWS removes optional whitespace (spaces and tabs) from both ends.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isTokenChar reports which bytes may appear in a token, such as a method
// or a field name (RFC 9110 section 5.6.2).
var isTokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isToken reports whether b is a non-empty token.
func isToken(b []byte) bool {
	for _, c := range b {
		if !isTokenChar[c] {
			return false
		}
	}
	return len(b) > 0
}

// isValueChar reports whether c may appear in a field value or a reason
// phrase: tab, space, visible ASCII and obs-text (RFC 9110 section 5.5).
// Every other control byte, DEL included, is refused.
func isValueChar(c byte) bool {
	return c == '\t' || (c >= ' ' && c != 0x7f)
}

// isTargetChar reports whether c may appear in a request target: visible
// ASCII only, so no space, control byte or non-ASCII byte.
func isTargetChar(c byte) bool {
	return c > ' ' && c < 0x7f
}
