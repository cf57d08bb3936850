package config

import (
	"slices"
	"testing"
)

func TestValidateIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string
	}{
		{"trusted proxies", func(c *Config) {
			c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1", "::1", "10.0.0.0/33", "proxy"}
		}, []string{
			`trusted_proxies[3]: invalid CIDR or address "10.0.0.0/33"`,
			`trusted_proxies[4]: invalid CIDR or address "proxy"`,
		}},
		{"header and proxy protocol", func(c *Config) {
			c.ClientIPHeader, c.ProxyProtocol = "x-client", "maybe"
		}, []string{
			`client_ip_header: invalid value "x-client" (use x-forwarded-for, forwarded or x-real-ip)`,
			`proxy_protocol: invalid value "maybe" (use off, optional or required)`,
		}},
		{"proxy protocol needs trust", func(c *Config) { c.ProxyProtocol = "required" },
			[]string{"proxy_protocol: needs trusted_proxies: headers are accepted only from them"}},
		{"tiers", func(c *Config) {
			c.Limits.PrefixTiers = []PrefixTier{
				{IPv6Prefix: 56, Limit: 400}, {IPv4Prefix: 24, IPv6Prefix: 48, Limit: 1},
				{IPv4Prefix: 40, Limit: 1}, {IPv4Prefix: 16},
			}
		}, []string{
			"limits.prefix_tiers[1]: set exactly one of ipv4_prefix and ipv6_prefix",
			"limits.prefix_tiers[2].ipv4_prefix: must be between 1 and 32",
			"limits.prefix_tiers[3].limit: must be at least 1",
		}},
		{"auth required without key", func(c *Config) { c.Auth.Required = true },
			[]string{"auth.required: needs a key: jwt.secret_file, public_key_file, jwks_file or jwks_url"}},
		{"bad token source", func(c *Config) {
			c.Auth.JWT.SecretFile = "/k"
			c.Auth.TokenSources = []string{"header", "carrier-pigeon"}
		}, []string{`auth.token_sources[1]: invalid value "carrier-pigeon" (use header, query, cookie or subprotocol)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.modify(&c)
			if got := errorLines(t, c.Validate()); !slices.Equal(got, tt.want) {
				t.Fatalf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseIdentity(t *testing.T) {
	t.Parallel()
	c, err := Parse("id.yaml", []byte(`
trusted_proxies: ["10.0.0.0/8"]
client_ip_header: forwarded
proxy_protocol: optional
auth:
  required: true
  jwt:
    secret_file: /etc/wsguard/hs.key
    audience: wsguard
  token_sources: [subprotocol, header]
  forward_user_header: X-User
limits:
  per_user: 3
  anonymous_share: 25%
  prefix_tiers:
    - {ipv6_prefix: 56, limit: 200}
routes:
  - {path: /, upstream: "http://127.0.0.1:1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Auth.Required || !c.Auth.Enabled() || c.Auth.JWT.Audience != "wsguard" ||
		!slices.Equal(c.Auth.TokenSources, []string{"subprotocol", "header"}) ||
		c.Auth.JWT.UserClaim != "sub" || c.Limits.PerUser != 3 || c.Limits.AnonymousShare != 0.25 ||
		len(c.Limits.PrefixTiers) != 1 || c.Limits.PrefixTiers[0].IPv6Prefix != 56 ||
		c.ProxyProtocol != "optional" || c.ClientIPHeader != "forwarded" {
		t.Fatalf("parsed %+v", c)
	}
	_, err = Parse("bool.yaml", []byte("auth:\n  required: yes\n"))
	if got := errorLines(t, err); !slices.Equal(got, []string{`bool.yaml:2: auth.required: invalid boolean "yes" (use true or false)`}) {
		t.Fatalf("errors %q", got)
	}
}
