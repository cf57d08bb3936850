package clientip

import (
	"fmt"
	"strconv"

	"github.com/wsguard/wsguard/internal/httphead"
)

// Header names the forwarding header trusted proxies use to name the
// client. The zero value is HeaderXFF.
type Header uint8

const (
	// HeaderXFF is X-Forwarded-For: a comma-separated chain of addresses,
	// each proxy appending the peer it saw.
	HeaderXFF Header = iota
	// HeaderForwarded is Forwarded (RFC 7239): the same chain as the for=
	// parameters of comma-separated elements.
	HeaderForwarded
	// HeaderXRealIP is X-Real-IP: one address, set by the last proxy.
	HeaderXRealIP
)

// headerInfo holds each Header's configuration spelling and field name.
var headerInfo = [...]struct{ config, field string }{
	HeaderXFF:       {"x-forwarded-for", "X-Forwarded-For"},
	HeaderForwarded: {"forwarded", "Forwarded"},
	HeaderXRealIP:   {"x-real-ip", "X-Real-IP"},
}

// ParseHeader returns the Header a configuration names: "x-forwarded-for",
// "forwarded" or "x-real-ip", in any ASCII case.
func ParseHeader(s string) (Header, error) {
	for h, info := range headerInfo {
		if httphead.EqualFold(s, info.config) {
			return Header(h), nil
		}
	}
	return 0, fmt.Errorf(
		"clientip: unknown client address header %q: want x-forwarded-for, forwarded or x-real-ip", s)
}

// String returns the spelling ParseHeader accepts, such as
// "x-forwarded-for".
func (h Header) String() string {
	if int(h) < len(headerInfo) {
		return headerInfo[h].config
	}
	return "Header(" + strconv.Itoa(int(h)) + ")"
}

// field returns the header field's name, or "" for an unknown Header.
func (h Header) field() string {
	if int(h) < len(headerInfo) {
		return headerInfo[h].field
	}
	return ""
}
