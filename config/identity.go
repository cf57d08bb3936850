package config

import (
	"net/netip"
	"strconv"
	"strings"
)

// PrefixTier is a looser address prefix with a limit of its own: one
// home holds an IPv6 /56, and one provider's NAT may hide a /24. Exactly
// one of IPv4Prefix and IPv6Prefix is set.
type PrefixTier struct {
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// Limit caps open connections from one such prefix (429).
	Limit int `yaml:"limit"`
}

// Auth configures JWT authentication of handshakes. It is on when a key
// source (jwt.secret_file, public_key_file, jwks_file or jwks_url) is set.
type Auth struct {
	// Required refuses handshakes without a valid token (401). When false,
	// anonymous handshakes pass, but a token that is present must be
	// valid. Default false.
	Required bool `yaml:"required"`
	JWT      JWT  `yaml:"jwt"`
	// TokenSources are tried in order: "header" (Authorization: Bearer),
	// "query", "cookie", "subprotocol". Default [header, query].
	TokenSources []string `yaml:"token_sources"`
	// QueryParam names the query parameter carrying the token, default
	// "access_token". It is removed before the request goes upstream.
	QueryParam string `yaml:"query_param"`
	// Cookie names the cookie carrying the token, default "access_token".
	Cookie string `yaml:"cookie"`
	// ForwardUserHeader, when set, names a request header that carries the
	// authenticated user id upstream. wsguard always overwrites it, and
	// removes it from anonymous requests. Default "" (off).
	ForwardUserHeader string `yaml:"forward_user_header"`
}

// JWT says how tokens are verified.
type JWT struct {
	SecretFile    string   `yaml:"secret_file"`     // HS256/384/512 key
	PublicKeyFile string   `yaml:"public_key_file"` // PEM RSA, ECDSA or Ed25519 key
	JWKSFile      string   `yaml:"jwks_file"`
	JWKSURL       string   `yaml:"jwks_url"`
	JWKSRefresh   Duration `yaml:"jwks_refresh"` // default 5m
	Issuer        string   `yaml:"issuer"`       // required and checked when set
	Audience      string   `yaml:"audience"`     // required and checked when set
	Leeway        Duration `yaml:"leeway"`       // clock skew allowed, default 30s
	UserClaim     string   `yaml:"user_claim"`   // default "sub"
	MaxTokenSize  Size     `yaml:"max_token_size"`
}

// Enabled reports whether a key source is configured.
func (a Auth) Enabled() bool {
	j := a.JWT
	return j.SecretFile != "" || j.PublicKeyFile != "" || j.JWKSFile != "" || j.JWKSURL != ""
}

// identity checks trusted proxies, the client address header, the PROXY
// protocol mode, auth and the identity limits.
func (v *validator) identity(c *Config) {
	for i, s := range c.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			v.add("trusted_proxies["+strconv.Itoa(i)+"]", "invalid CIDR or address %q", s)
		}
	}
	var ps problems
	oneOf(&ps, "client_ip_header", strings.ToLower(c.ClientIPHeader), "x-forwarded-for", "forwarded", "x-real-ip")
	oneOf(&ps, "proxy_protocol", c.ProxyProtocol, "off", "optional", "required")
	for _, p := range ps {
		v.add(p.key, "%s", p.msg)
	}
	if (c.ProxyProtocol == "optional" || c.ProxyProtocol == "required") && len(c.TrustedProxies) == 0 {
		v.add("proxy_protocol", "needs trusted_proxies: headers are accepted only from them")
	}

	l := c.Limits
	if l.PerUser < 0 {
		v.add("limits.per_user", "must be at least 0")
	}
	if l.AnonymousShare < 0 || l.AnonymousShare > 1 {
		v.add("limits.anonymous_share", "must be between 0 and 100%%")
	}
	for i, t := range l.PrefixTiers {
		key := "limits.prefix_tiers[" + strconv.Itoa(i) + "]"
		switch {
		case (t.IPv4Prefix == 0) == (t.IPv6Prefix == 0):
			v.add(key, "set exactly one of ipv4_prefix and ipv6_prefix")
		case t.IPv4Prefix < 0 || t.IPv4Prefix > 32:
			v.add(key+".ipv4_prefix", "must be between 1 and 32")
		case t.IPv6Prefix < 0 || t.IPv6Prefix > 128:
			v.add(key+".ipv6_prefix", "must be between 1 and 128")
		}
		if t.Limit < 1 {
			v.add(key+".limit", "must be at least 1")
		}
	}

	a := c.Auth
	for i, s := range a.TokenSources {
		var ps problems
		oneOf(&ps, "token_sources["+strconv.Itoa(i)+"]", s, "header", "query", "cookie", "subprotocol")
		v.report("auth", ps)
	}
	if a.Required && !a.Enabled() {
		v.add("auth.required", "needs a key: jwt.secret_file, public_key_file, jwks_file or jwks_url")
	}
	if a.Enabled() {
		if a.JWT.UserClaim == "" {
			v.add("auth.jwt.user_claim", "must not be empty")
		}
		if a.JWT.MaxTokenSize < 16 {
			v.add("auth.jwt.max_token_size", "must be at least 16B")
		}
		if len(a.TokenSources) == 0 {
			v.add("auth.token_sources", "needs at least one source")
		}
	}
}

// parsePrefix reads a CIDR or a single address (as a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
