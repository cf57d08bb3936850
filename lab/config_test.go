package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/config"
)

func TestPointRoutes(t *testing.T) {
	t.Parallel()
	in := `# the operator's comment stays
limits:
  max_connections: 900 # so does this one
routes:
  - path: /ws
    upstream: http://127.0.0.1:8888
  - path: /feed
    upstream: "ws://backend.example:9000"
    timeouts:
      idle: 1m
`
	out, err := pointRoutes([]byte(in), "http://127.0.0.1:4242")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Count(s, "http://127.0.0.1:4242") != 2 || strings.Contains(s, "8888") || strings.Contains(s, "9000") {
		t.Errorf("upstreams not all replaced:\n%s", s)
	}
	for _, keep := range []string{"# the operator's comment stays", "max_connections: 900", "# so does this one", "idle: 1m"} {
		if !strings.Contains(s, keep) {
			t.Errorf("lost %q:\n%s", keep, s)
		}
	}

	// The rewritten file is still a valid wsguard config, with the new
	// upstream.
	path := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 2 || cfg.Limits.MaxConnections != 900 {
		t.Errorf("loaded %+v", cfg)
	}
}

func TestPointRoutesErrors(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"no routes":     "limits:\n  per_ip: 3\n",
		"empty routes":  "routes: []\n",
		"no upstream":   "routes:\n  - path: /ws\n",
		"not a mapping": "- a\n- b\n",
		"not yaml":      "routes: [\n",
	} {
		if _, err := pointRoutes([]byte(in), "http://127.0.0.1:1"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestExampleConfig checks examples/tornado/wsguard.yaml, the protected
// arm's config: valid, and sized below Tornado's 1024 descriptors.
func TestExampleConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "examples", "tornado", "wsguard.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pointRoutes(b, "http://127.0.0.1:4242")
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 1 {
		t.Fatalf("%d routes, want the one route to Tornado (fair admission acts on a lone route's cap)", len(cfg.Routes))
	}
	if r := cfg.Routes[0]; r.Upstream != "http://127.0.0.1:4242" ||
		r.Limits.MaxConnections <= 0 || r.Limits.MaxConnections >= 1024 || cfg.Limits.Pressure <= 0 {
		t.Errorf("route to %s with max_connections %d, pressure %v: want the lab's upstream and a cap below 1024 with fair admission on",
			r.Upstream, r.Limits.MaxConnections, cfg.Limits.Pressure)
	}
}
