package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Validate checks c for settings that decode but cannot work, such as a
// bad listen address, a route without an upstream, or a zero handshake
// timeout. It returns nil or an *ErrorList naming every problem. When c
// came from Parse or Load, each problem names the file and the line of
// its key (or of the nearest enclosing key the file sets).
//
// A route's timeouts and messages are checked as the route will use them,
// but a problem the route inherited unchanged from the top-level section
// is reported once, at the top level.
func (c *Config) Validate() error {
	v := &validator{src: c.src}
	v.address("listen", c.Listen, false)
	v.address("admin_listen", c.AdminListen, true)
	for i, o := range c.AllowedOrigins {
		v.origin("allowed_origins["+strconv.Itoa(i)+"]", o)
	}
	v.report("tls", tlsProblems(c.TLS))
	v.report("limits", limitProblems(c.Limits))
	v.report("timeouts", timeoutProblems(c.Timeouts))
	v.report("messages", messageProblems(c.Messages))
	v.report("log", logProblems(c.Log))
	v.report("admin", adminProblems(c.Admin))
	v.identity(c)
	v.store(c)
	v.routes(c)
	return v.errs.err()
}

// validator gathers problems and locates them in the source file.
type validator struct {
	src  *source
	errs ErrorList
}

// add records a problem for key.
func (v *validator) add(key, format string, args ...any) {
	file := ""
	if v.src != nil {
		file = v.src.file
	}
	v.errs.add(file, v.src.line(key), key, format, args...)
}

// report records problems found in the section named prefix.
func (v *validator) report(prefix string, ps []problem) {
	for _, p := range ps {
		v.add(prefix+"."+p.key, "%s", p.msg)
	}
}

// address checks a host:port listen address; optional allows "".
func (v *validator) address(key, addr string, optional bool) {
	if addr == "" && optional {
		return
	}
	if addr == "" {
		v.add(key, "missing address (use host:port such as :8080)")
		return
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		v.add(key, "invalid address %q (use host:port such as :8080)", addr)
	}
}

// origin checks an allowed_origins entry: "*" or scheme://host[:port].
func (v *validator) origin(key, o string) {
	if o == "*" {
		return
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.Path != "" ||
		strings.ContainsAny(o, "?#") {
		v.add(key, `invalid origin %q (use "*" or scheme://host[:port])`, o)
	}
}

// routes checks that there is at least one route and each is usable.
func (v *validator) routes(c *Config) {
	if len(c.Routes) == 0 {
		v.add("routes", "no routes (at least one route or --upstream is needed)")
		return
	}
	topTimeouts := timeoutProblems(c.Timeouts)
	topMessages := messageProblems(c.Messages)
	paths := make(map[string]int)
	for i, r := range c.Routes {
		key := "routes[" + strconv.Itoa(i) + "]"
		v.routePath(key+".path", r.Path, i, paths)
		v.upstream(key+".upstream", r.Upstream)
		v.report(key+".upstream_tls", upstreamTLSProblems(r.UpstreamTLS, isSecure(r.Upstream)))
		if r.HTTP != "" {
			v.report(key, passthroughProblems(r.HTTP, r.Passthrough))
		}
		v.report(key+".limits", routeLimitProblems(r.Limits))
		v.report(key+".timeouts", without(timeoutProblems(r.Timeouts), topTimeouts))
		v.report(key+".messages", without(messageProblems(r.Messages), topMessages))
	}
}

// routePath checks that route i's path begins with "/" and is unique;
// paths maps each path seen so far to its route.
func (v *validator) routePath(key, path string, i int, paths map[string]int) {
	switch first, dup := paths[path]; {
	case path == "":
		v.add(key, "missing path (use a prefix such as /ws)")
	case !strings.HasPrefix(path, "/"):
		v.add(key, `path %q must begin with "/"`, path)
	case dup:
		v.add(key, "duplicate path %q (also routes[%d])", path, first)
	default:
		paths[path] = i
	}
}

// upstream checks a backend URL: http, https, ws or wss, with a host and
// without a query or fragment.
func (v *validator) upstream(key, s string) {
	if s == "" {
		v.add(key, "missing upstream (use a URL such as http://127.0.0.1:3000)")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.add(key, "invalid URL %q", s)
	case !slices.Contains([]string{"http", "https", "ws", "wss"}, u.Scheme):
		v.add(key, "upstream %q must use http, https, ws or wss", s)
	case u.Host == "":
		v.add(key, "upstream %q has no host", s)
	case strings.ContainsAny(s, "?#"):
		v.add(key, "upstream %q must not have a query or fragment", s)
	}
}

// isSecure reports whether an upstream URL uses https or wss.
func isSecure(upstream string) bool {
	u, err := url.Parse(upstream)
	return err == nil && (u.Scheme == "https" || u.Scheme == "wss")
}

// problem is one failed check, keyed relative to its section.
type problem struct {
	key, msg string
}

// problems collects failed checks.
type problems []problem

// add records a problem for key.
func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
}

// without returns the problems in ps that are not in inherited.
func without(ps, inherited []problem) []problem {
	return slices.DeleteFunc(ps, func(p problem) bool {
		return slices.Contains(inherited, p)
	})
}
