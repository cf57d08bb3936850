package config

import "testing"

func TestRouteFor(t *testing.T) {
	t.Parallel()
	c := Default()
	for _, p := range []string{"/ws", "/ws/admin", "/api/", "/"} {
		c.Routes = append(c.Routes, c.NewRoute(p, "http://backend"+p))
	}
	noRoot := Default()
	noRoot.Routes = append(noRoot.Routes, c.Routes[:3]...)

	tests := []struct {
		name   string
		config Config
		path   string
		want   string // matched route's path; "" for no match
	}{
		{name: "exact", config: c, path: "/ws", want: "/ws"},
		{name: "below", config: c, path: "/ws/x", want: "/ws"},
		{name: "query", config: c, path: "/ws?token=1", want: "/ws"},
		{name: "not a segment boundary", config: c, path: "/wsx", want: "/"},
		{name: "longest wins", config: c, path: "/ws/admin/1", want: "/ws/admin"},
		{name: "longer exact", config: c, path: "/ws/admin", want: "/ws/admin"},
		{name: "longer prefix of a segment", config: c, path: "/ws/administrator", want: "/ws"},
		{name: "trailing slash prefix", config: c, path: "/api/v1", want: "/api/"},
		{name: "trailing slash prefix without it", config: c, path: "/api", want: "/"},
		{name: "root", config: c, path: "/", want: "/"},
		{name: "anything", config: c, path: "/other", want: "/"},
		{name: "no root", config: noRoot, path: "/other", want: ""},
		{name: "no routes", config: Default(), path: "/ws", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, ok := tt.config.RouteFor(tt.path)
			switch {
			case ok != (tt.want != ""):
				t.Fatalf("RouteFor(%q) ok = %v, want match %q", tt.path, ok, tt.want)
			case ok && r.Path != tt.want:
				t.Fatalf("RouteFor(%q) = %q, want %q", tt.path, r.Path, tt.want)
			}
		})
	}
}

func TestRouteForPointsIntoRoutes(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Routes = append(c.Routes, c.NewRoute("/ws", "http://a"))
	r, _ := c.RouteFor("/ws")
	if r != &c.Routes[0] {
		t.Fatal("RouteFor returned a copy, want a pointer into Routes")
	}
}

func TestRouteForAllocs(t *testing.T) {
	c := Default()
	for _, p := range []string{"/a", "/b/c", "/"} {
		c.Routes = append(c.Routes, c.NewRoute(p, "http://x"))
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := c.RouteFor("/b/c/d?x=1"); !ok {
			t.Fatal("no route")
		}
	})
	if allocs != 0 {
		t.Fatalf("RouteFor allocates %v times per call", allocs)
	}
}

func TestNewRouteCopiesSections(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Timeouts.Idle = Duration(42)
	c.Messages.OverRate = "close"
	r := c.NewRoute("/ws", "ws://x")
	if r.Timeouts != c.Timeouts || r.Messages != c.Messages {
		t.Fatalf("NewRoute sections = %+v %+v, want copies of the top level", r.Timeouts, r.Messages)
	}
	if r.Limits != (RouteLimits{}) {
		t.Fatalf("NewRoute limits = %+v, want zero", r.Limits)
	}
}

func BenchmarkRouteFor(b *testing.B) {
	c := Default()
	for _, p := range []string{"/chat", "/feed", "/feed/live", "/"} {
		c.Routes = append(c.Routes, c.NewRoute(p, "http://x"))
	}
	b.ReportAllocs()
	for b.Loop() {
		c.RouteFor("/feed/live/42?since=7")
	}
}
