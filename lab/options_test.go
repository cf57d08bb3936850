package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(cfg, []byte("routes: [{path: /, upstream: http://127.0.0.1:1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	quick, err := Suite("quick")
	if err != nil {
		t.Fatal(err)
	}
	good := Options{Scenarios: quick, Config: cfg, Dir: t.TempDir()}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no scenario", func(o *Options) { o.Scenarios = nil }, "no scenario"},
		{"no port", func(o *Options) { o.BackendCmd = "python3 app.py --port 8000" }, "{port}"},
		{"tiny nofile", func(o *Options) { o.BackendNofile = 5 }, "below 32"},
		{"huge nofile", func(o *Options) { o.BackendNofile = 1 << 30 }, "hard limit"},
		{"path", func(o *Options) { o.Path = "ws" }, "must begin with /"},
		{"no config", func(o *Options) { o.Config = "" }, "config for the protected arm is required"},
		{"missing config", func(o *Options) { o.Config = "/nonexistent/w.yaml" }, "no such file"},
		{"missing binary", func(o *Options) { o.WSGuardBin = "/nonexistent/wsguard" }, "wsguard binary"},
		{"no dir", func(o *Options) { o.Dir = "" }, "output directory"},
		{"negative timeout", func(o *Options) { o.RecoveryTimeout = -time.Second }, "recovery timeout must be positive"},
		{"fast probe", func(o *Options) { o.ProbeInterval = time.Millisecond }, "below 10ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.change(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	got, err := Lookup("slowloris, hold")
	if err != nil || len(got) != 2 || got[0].Name != "slowloris" || got[1].Name != "hold" {
		t.Errorf("Lookup = %v, %v", got, err)
	}
	for _, bad := range []string{"nope", "hold,hold", ""} {
		if _, err := Lookup(bad); err == nil {
			t.Errorf("Lookup(%q) succeeded", bad)
		}
	}
	if _, err := Suite("medium"); err == nil || !strings.Contains(err.Error(), "quick, full") {
		t.Errorf("Suite(medium): %v", err)
	}
	full, err := Suite("full")
	if err != nil || len(full) != len(Scenarios) {
		t.Errorf("full suite: %d scenarios, %v; want all %d", len(full), err, len(Scenarios))
	}
	// Every scenario makes a valid flood, with the probe's address kept
	// out of the attacker's.
	for _, sc := range Scenarios {
		cfg, err := sc.floodConfig("ws://127.0.0.1:1/ws")
		if err != nil {
			t.Errorf("%s: %v", sc.Name, err)
			continue
		}
		if cfg.Sources.Contains(probeSource) {
			t.Errorf("%s: the attack's sources include the probe's %s", sc.Name, probeSource)
		}
	}
}
