package config

import "strings"

// NewRoute returns a route from path to upstream whose timeouts and
// messages are copies of c's top-level sections, as a route read from a
// file starts; plain requests are refused and passthrough has its defaults. Its limits are zero (none beyond the instance-wide ones).
func (c *Config) NewRoute(path, upstream string) Route {
	return Route{
		Path:        path,
		Upstream:    upstream,
		HTTP:        "refuse",
		Passthrough: defaultPassthrough(),
		Timeouts:    c.Timeouts,
		Messages:    c.Messages,
	}
}

// RouteFor returns the route whose path is the longest prefix of path. A
// prefix matches at a segment boundary: "/ws" matches "/ws", "/ws/x" and
// "/ws?x=1" but not "/wsx"; "/" matches every path. It does not allocate.
// The returned route points into c.Routes.
func (c Config) RouteFor(path string) (*Route, bool) {
	best := -1
	for i := range c.Routes {
		p := c.Routes[i].Path
		if matchPrefix(p, path) && (best < 0 || len(p) > len(c.Routes[best].Path)) {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	return &c.Routes[best], true
}

// matchPrefix reports whether prefix matches path at a segment boundary.
func matchPrefix(prefix, path string) bool {
	if prefix == "/" {
		return true
	}
	if prefix == "" || !strings.HasPrefix(path, prefix) {
		return false
	}
	if len(path) == len(prefix) || prefix[len(prefix)-1] == '/' {
		return true
	}
	next := path[len(prefix)]
	return next == '/' || next == '?'
}
