package config

import (
	"time"
)

// TLS terminates TLS on the public listener. It is on when CertFile is
// set. The certificate, key and client CA files are read again when they
// change on disk and on SIGHUP; open connections are not affected.
type TLS struct {
	// CertFile and KeyFile are PEM files: the certificate chain (leaf
	// first) and its private key. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is the oldest protocol accepted: "1.2" (default) or
	// "1.3".
	MinVersion string `yaml:"min_version"`
	// ClientCAFile, when set, makes client certificates mandatory: a
	// client must present one that chains to a CA in this PEM file.
	ClientCAFile string `yaml:"client_ca_file"`
	// HandshakeTimeout bounds the TLS handshake, counted from accept,
	// default 10s. The request head then has timeouts.handshake.
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// WatchInterval is how often the files are checked for changes,
	// default 5s; 0 turns the check off (SIGHUP still reloads). It is
	// read at start only.
	WatchInterval Duration `yaml:"watch_interval"`
}

// Enabled reports whether the listener speaks TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// UpstreamTLS says how a route verifies an https or wss upstream.
type UpstreamTLS struct {
	// CAFile is a PEM file of the CAs the upstream's certificate must
	// chain to. Default: the system's roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the certificate must carry and the SNI sent.
	// Default: the upstream URL's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate. For tests only: it
	// gives up the protection TLS is there for. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// CertFile and KeyFile are the guard's client certificate, for
	// upstreams that require one (mutual TLS). Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Passthrough bounds the plain HTTP requests a route with http:
// passthrough proxies.
type Passthrough struct {
	// MaxBody caps a request body, default 10MiB. A larger Content-Length
	// is answered 413; a chunked body is cut off when it passes the cap.
	MaxBody Size `yaml:"max_body"`
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// head once the request is sent, default 30s (504 beyond it).
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// IdleTimeout ends a request on which no byte moved, in either
	// direction, for this long, default 60s.
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// defaultTLS returns the tls section's defaults.
func defaultTLS() TLS {
	return TLS{
		MinVersion:       "1.2",
		HandshakeTimeout: Duration(10 * time.Second),
		WatchInterval:    Duration(5 * time.Second),
	}
}

// defaultPassthrough returns a route's passthrough defaults.
func defaultPassthrough() Passthrough {
	return Passthrough{
		MaxBody:               10 * MiB,
		ResponseHeaderTimeout: Duration(30 * time.Second),
		IdleTimeout:           Duration(60 * time.Second),
	}
}

// tlsProblems checks the tls section.
func tlsProblems(t TLS) []problem {
	var ps problems
	oneOf(&ps, "min_version", t.MinVersion, "1.2", "1.3")
	if t.Enabled() {
		pair(&ps, "cert_file", "key_file", t.CertFile, t.KeyFile)
	} else if t.ClientCAFile != "" {
		ps.add("client_ca_file", "needs cert_file and key_file (client certificates are checked only over TLS)")
	}
	duration(&ps, "handshake_timeout", t.HandshakeTimeout, true)
	duration(&ps, "watch_interval", t.WatchInterval, false)
	return ps
}

// upstreamTLSProblems checks a route's upstream_tls section; secure says
// whether the upstream URL is https or wss.
func upstreamTLSProblems(u UpstreamTLS, secure bool) []problem {
	var ps problems
	pair(&ps, "cert_file", "key_file", u.CertFile, u.KeyFile)
	if !secure && u != (UpstreamTLS{}) {
		ps.add("ca_file", "upstream_tls applies only to https and wss upstreams")
	}
	return ps
}

// passthroughProblems checks a route's http and passthrough settings.
func passthroughProblems(mode string, p Passthrough) []problem {
	var ps problems
	oneOf(&ps, "http", mode, "refuse", "passthrough")
	if p.MaxBody < 0 {
		ps.add("passthrough.max_body", "must not be negative")
	}
	duration(&ps, "passthrough.response_header_timeout", p.ResponseHeaderTimeout, true)
	duration(&ps, "passthrough.idle_timeout", p.IdleTimeout, true)
	return ps
}

// pair checks that two files are given together.
func pair(ps *problems, aKey, bKey, a, b string) {
	switch {
	case a == "" && b != "":
		ps.add(aKey, "missing (%s is set; give both)", bKey)
	case a != "" && b == "":
		ps.add(bKey, "missing (%s is set; give both)", aKey)
	}
}
