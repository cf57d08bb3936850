package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseEmptyKeepsDefaults(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"empty":          "",
		"comment":        "# nothing set\n",
		"document start": "---\n",
		"null document":  "~\n",
		"empty sections": "timeouts:\nmessages:\nlimits:\nlog:\nroutes:\nallowed_origins:\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("wsguard.yaml", []byte(in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			sameSettings(t, c, Default())
		})
	}
}

// sameSettings fails unless got and want hold the same settings.
func sameSettings(t *testing.T, got, want Config) {
	t.Helper()
	if got.Listen != want.Listen || got.AdminListen != want.AdminListen ||
		!slices.Equal(got.AllowedOrigins, want.AllowedOrigins) ||
		!reflect.DeepEqual(got.Limits, want.Limits) || got.Timeouts != want.Timeouts ||
		!reflect.DeepEqual(got.Auth, want.Auth) || got.ProxyProtocol != want.ProxyProtocol ||
		got.Messages != want.Messages || got.Log != want.Log ||
		len(got.Routes) != len(want.Routes) {
		t.Fatalf("settings differ:\n got %+v\nwant %+v", got, want)
	}
}

// overlayFile sets top-level sections after the routes, to show that the
// order of keys does not matter.
const overlayFile = `
listen: "0.0.0.0:80"
allowed_origins: ["https://app.example.com", "*"]
routes:
  - path: /chat
    upstream: ws://127.0.0.1:3000
    limits:
      per_ip: 5
      handshake_rate: 10/m
      handshake_burst: 3
    timeouts:
      idle: 1m
    messages:
      over_rate: close
  - path: /feed
    upstream: http://127.0.0.1:3001
timeouts:
  idle: 10m
  ping_interval: 0
messages:
  max_size: 64KiB
  rate: "0"
limits:
  per_ip: 20
log: {format: json, level: debug}
`

func TestParseOverlays(t *testing.T) {
	t.Parallel()
	c, err := Parse("wsguard.yaml", []byte(overlayFile))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Default()
	want.Listen = "0.0.0.0:80"
	want.AllowedOrigins = []string{"https://app.example.com", "*"}
	want.Timeouts.Idle = Duration(10 * time.Minute)
	want.Timeouts.PingInterval = 0
	want.Messages.MaxSize = 64 * KiB
	want.Messages.Rate = 0
	want.Limits.PerIP = 20
	want.Log = Log{Format: "json", Level: "debug"}
	want.Routes = make([]Route, 2)
	sameSettings(t, c, want)

	chat := want.NewRoute("/chat", "ws://127.0.0.1:3000")
	chat.Limits = RouteLimits{PerIP: 5, HandshakeRate: Rate(10.0 / 60), HandshakeBurst: 3}
	chat.Timeouts.Idle = Duration(time.Minute)
	chat.Messages.OverRate = "close"
	feed := want.NewRoute("/feed", "http://127.0.0.1:3001")
	for i, r := range []Route{chat, feed} {
		if c.Routes[i] != r {
			t.Errorf("routes[%d]:\n got %+v\nwant %+v", i, c.Routes[i], r)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseAliases(t *testing.T) {
	t.Parallel()
	in := `
routes:
  - path: /a
    upstream: http://a
    timeouts: &slow
      idle: 1h
      write: 1m
  - path: /b
    upstream: http://b
    timeouts: *slow
`
	c, err := Parse("wsguard.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for i, r := range c.Routes {
		if r.Timeouts.Idle != Duration(time.Hour) || r.Timeouts.Write != Duration(time.Minute) {
			t.Errorf("routes[%d].timeouts = %+v, want idle 1h and write 1m", i, r.Timeouts)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "wsguard.yaml")
	if err := os.WriteFile(path, []byte("log:\n  level: loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	err = c.Validate()
	want := path + ":2: log.level: invalid value \"loud\" (use debug, info, warn or error)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Validate() = %v, want it to contain %q", err, want)
	}

	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}
