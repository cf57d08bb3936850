package flood

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// TargetError says why a target may not be flooded. It wraps ErrConfig.
type TargetError struct {
	Target string
	Addr   netip.Addr // the address refused; zero when the host did not resolve
	Reason string
}

func (e *TargetError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("flood: target %s: %s", e.Target, e.Reason)
	}
	return fmt.Sprintf("flood: target %s (%s): %s", e.Target, e.Addr, e.Reason)
}

// Unwrap returns ErrConfig: a refused target is a usage error.
func (e *TargetError) Unwrap() error { return ErrConfig }

// endpoint is a checked target: where to connect and what to ask for.
type endpoint struct {
	addr   netip.AddrPort // resolved and checked
	host   string         // Host header: the URL's host and port as written
	target string         // request target: path and query
	url    string
}

// CheckTarget resolves target's host and checks that every address it
// resolves to is on loopback (127.0.0.0/8, ::1) or inside one of allow.
// It returns the address to connect to, IPv4 first. Resolution may query
// DNS, but nothing is sent to the target itself.
func CheckTarget(ctx context.Context, target string, allow []netip.Prefix) (netip.AddrPort, error) {
	ep, err := checkTarget(ctx, target, allow)
	return ep.addr, err
}

func checkTarget(ctx context.Context, target string, allow []netip.Prefix) (endpoint, error) {
	u, err := parseTarget(target)
	if err != nil {
		return endpoint{}, err
	}
	port := 80
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return endpoint{}, &TargetError{Target: target, Reason: "bad port " + strconv.Quote(p)}
		}
	}
	addrs, err := resolve(ctx, u.Hostname())
	if err != nil {
		return endpoint{}, &TargetError{Target: target, Reason: "resolving: " + err.Error()}
	}
	for _, a := range addrs {
		if !allowed(a, allow) {
			return endpoint{}, &TargetError{Target: target, Addr: a, Reason: notAllowedReason(a)}
		}
	}
	return endpoint{
		addr:   netip.AddrPortFrom(pickAddr(addrs), uint16(port)),
		host:   u.Host,
		target: requestTarget(u),
		url:    target,
	}, nil
}

// resolve returns the addresses of host: the literal itself, or what the
// resolver says.
func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no address for %s", host)
	}
	return addrs, nil
}

func allowed(a netip.Addr, allow []netip.Prefix) bool {
	if a.IsLoopback() {
		return true
	}
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func notAllowedReason(a netip.Addr) string {
	cidr := netip.PrefixFrom(a, a.BitLen())
	return fmt.Sprintf("not on loopback; flood only what you own, and name it with --allow-target %s", cidr)
}

// pickAddr prefers an IPv4 address, which Sources can bind for.
func pickAddr(addrs []netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a.Is4() {
			return a
		}
	}
	return addrs[0]
}

// requestTarget is the path and query of u, "/" when empty.
func requestTarget(u *url.URL) string {
	t := u.RequestURI()
	if !strings.HasPrefix(t, "/") {
		t = "/" + t
	}
	return t
}
