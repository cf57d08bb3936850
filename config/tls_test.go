package config

import (
	"slices"
	"testing"
	"time"
)

func TestTLSAndPassthroughFromFile(t *testing.T) {
	t.Parallel()
	c, err := Parse("wsguard.yaml", []byte(`
tls:
  cert_file: /etc/wsguard/cert.pem
  key_file: /etc/wsguard/key.pem
  min_version: "1.3"
  client_ca_file: /etc/wsguard/clients.pem
  handshake_timeout: 3s
routes:
  - path: /
    upstream: wss://backend.internal
    http: passthrough
    passthrough:
      max_body: 2MiB
      idle_timeout: 10s
    upstream_tls:
      ca_file: /etc/wsguard/backend-ca.pem
      server_name: backend.internal
      cert_file: /etc/wsguard/guard.pem
      key_file: /etc/wsguard/guard-key.pem
  - path: /ws
    upstream: http://127.0.0.1:3000
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.TLS.Enabled() || c.TLS.MinVersion != "1.3" || c.TLS.HandshakeTimeout.Std() != 3*time.Second ||
		c.TLS.WatchInterval.Std() != 5*time.Second {
		t.Errorf("tls: %+v", c.TLS)
	}
	r := c.Routes[0]
	if r.HTTP != "passthrough" || r.Passthrough.MaxBody != 2*MiB || r.Passthrough.IdleTimeout.Std() != 10*time.Second ||
		r.Passthrough.ResponseHeaderTimeout.Std() != 30*time.Second {
		t.Errorf("passthrough: %q %+v", r.HTTP, r.Passthrough)
	}
	if r.UpstreamTLS.ServerName != "backend.internal" || r.UpstreamTLS.CertFile == "" {
		t.Errorf("upstream_tls: %+v", r.UpstreamTLS)
	}
	if d := c.Routes[1]; d.HTTP != "refuse" || d.Passthrough != defaultPassthrough() {
		t.Errorf("route without http: %q %+v, want refuse and the defaults", d.HTTP, d.Passthrough)
	}
}

func TestValidateTLSAndPassthrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"tls without key", func(c *Config) { c.TLS.CertFile = "c.pem" },
			[]string{"tls.key_file: missing (cert_file is set; give both)"}},
		{"tls bad version and timeout", func(c *Config) {
			c.TLS.CertFile, c.TLS.KeyFile, c.TLS.MinVersion, c.TLS.HandshakeTimeout = "c", "k", "1.1", 0
		}, []string{
			`tls.min_version: invalid value "1.1" (use 1.2 or 1.3)`,
			"tls.handshake_timeout: must be greater than 0",
		}},
		{"client CA without TLS", func(c *Config) { c.TLS.ClientCAFile = "ca.pem" },
			[]string{"tls.client_ca_file: needs cert_file and key_file (client certificates are checked only over TLS)"}},
		{"upstream_tls on plain upstream", func(c *Config) { c.Routes[0].UpstreamTLS.CAFile = "ca.pem" },
			[]string{"routes[0].upstream_tls.ca_file: upstream_tls applies only to https and wss upstreams"}},
		{"upstream client cert without key", func(c *Config) {
			c.Routes[0].Upstream = "https://b"
			c.Routes[0].UpstreamTLS.CertFile = "c.pem"
		}, []string{"routes[0].upstream_tls.key_file: missing (cert_file is set; give both)"}},
		{"bad http mode", func(c *Config) { c.Routes[0].HTTP = "proxy" },
			[]string{`routes[0].http: invalid value "proxy" (use refuse or passthrough)`}},
		{"bad passthrough bounds", func(c *Config) {
			c.Routes[0].HTTP = "passthrough"
			c.Routes[0].Passthrough = Passthrough{MaxBody: -1}
		}, []string{
			"routes[0].passthrough.max_body: must not be negative",
			"routes[0].passthrough.response_header_timeout: must be greater than 0",
			"routes[0].passthrough.idle_timeout: must be greater than 0",
		}},
		{"route built in code refuses plain requests", func(c *Config) {
			c.Routes = []Route{{Path: "/", Upstream: "http://b", Timeouts: c.Timeouts, Messages: c.Messages}}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.modify(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if got := errorLines(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
