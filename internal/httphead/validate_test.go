package httphead

import (
	"strings"
	"testing"
)

// minimalFields are the fields of a minimal valid opening handshake.
var minimalFields = []string{
	"Host: example.com",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
	"Sec-WebSocket-Version: 13",
}

// handshake builds a head from a request line and field lines.
func handshake(requestLine string, fields ...string) string {
	var b strings.Builder
	b.WriteString(requestLine + "\r\n")
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// minimalWith returns minimalFields without the field called drop (if any)
// and with extra appended.
func minimalWith(drop string, extra ...string) []string {
	var out []string
	for _, f := range minimalFields {
		if drop == "" || !strings.HasPrefix(f, drop+":") {
			out = append(out, f)
		}
	}
	return append(out, extra...)
}

func TestValidateUpgradeAccepts(t *testing.T) {
	t.Parallel()
	const get = "GET /chat HTTP/1.1"
	tests := []struct {
		name string
		head string
	}{
		{"minimal", handshake(get, minimalFields...)},
		{"browser", browserHandshake},
		{"connection list", handshake(get, minimalWith("Connection", "Connection: keep-alive, Upgrade")...)},
		{"connection on two lines", handshake(get, minimalWith("Connection", "Connection: keep-alive", "Connection: upgrade")...)},
		{"upgrade case", handshake(get, minimalWith("Upgrade", "Upgrade: WebSocket")...)},
		{"content-length zero", handshake(get, minimalWith("", "Content-Length: 0")...)},
		{"host with port", handshake(get, minimalWith("Host", "Host: example.com:8080")...)},
		{"ipv6 host", handshake(get, minimalWith("Host", "Host: [2001:db8::1]:443")...)},
		{"query", handshake("GET /chat?token=a%20b&x=1 HTTP/1.1", minimalFields...)},
		{"http/1.2", handshake("GET / HTTP/1.2", minimalFields...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRequest([]byte(tt.head), nil)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if rj := ValidateUpgrade(&r); rj != nil {
				t.Fatalf("ValidateUpgrade refused: %v", rj)
			}
		})
	}
}

func TestValidateUpgradeRefuses(t *testing.T) {
	t.Parallel()
	const (
		get         = "GET /chat HTTP/1.1"
		notUpgrade  = "not a websocket upgrade"
		badKey      = "invalid Sec-WebSocket-Key"
		badVersion  = "unsupported websocket version"
		bodyRefusal = "unexpected request body"
	)
	tests := []struct {
		name       string
		head       string
		wantStatus int
		wantReason string
	}{
		{"post", handshake("POST /chat HTTP/1.1", minimalFields...), 400,
			"not a websocket upgrade: method must be GET"},
		{"lower-case get", handshake("get /chat HTTP/1.1", minimalFields...), 400,
			"not a websocket upgrade: method must be GET"},
		{"http/1.0", handshake("GET /chat HTTP/1.0", minimalFields...), 400,
			"not a websocket upgrade: HTTP/1.1 required"},
		{"http/2.0", handshake("GET /chat HTTP/2.0", minimalFields...), 400,
			"not a websocket upgrade: HTTP/1.1 required"},
		{"absolute-form target", handshake("GET http://example.com/chat HTTP/1.1", minimalFields...), 400,
			"invalid request target"},
		{"asterisk target", handshake("GET * HTTP/1.1", minimalFields...), 400, "invalid request target"},
		{"fragment in target", handshake("GET /chat#x HTTP/1.1", minimalFields...), 400, "invalid request target"},
		{"missing host", handshake(get, minimalWith("Host")...), 400, "missing host header"},
		{"duplicate host", handshake(get, minimalWith("", "Host: evil.example")...), 400, "duplicate host header"},
		{"duplicate identical host", handshake(get, minimalWith("", "host: example.com")...), 400,
			"duplicate host header"},
		{"empty host", handshake(get, minimalWith("Host", "Host:")...), 400, "invalid host header"},
		{"space in host", handshake(get, minimalWith("Host", "Host: a b")...), 400, "invalid host header"},
		{"path in host", handshake(get, minimalWith("Host", "Host: a/b")...), 400, "invalid host header"},
		{"userinfo in host", handshake(get, minimalWith("Host", "Host: user@a")...), 400, "invalid host header"},
		{"content-length and transfer-encoding",
			handshake(get, minimalWith("", "Content-Length: 5", "Transfer-Encoding: chunked")...), 400, bodyRefusal},
		{"transfer-encoding", handshake(get, minimalWith("", "Transfer-Encoding: chunked")...), 400, bodyRefusal},
		{"content-length", handshake(get, minimalWith("", "Content-Length: 5")...), 400, bodyRefusal},
		{"content-length 00", handshake(get, minimalWith("", "Content-Length: 00")...), 400, bodyRefusal},
		{"two content-lengths", handshake(get, minimalWith("", "Content-Length: 0", "Content-Length: 0")...), 400,
			bodyRefusal},
		{"no upgrade", handshake(get, minimalWith("Upgrade")...), 400, notUpgrade},
		{"upgrade h2c", handshake(get, minimalWith("Upgrade", "Upgrade: h2c")...), 400, notUpgrade},
		{"no connection", handshake(get, minimalWith("Connection")...), 400, notUpgrade},
		{"connection keep-alive", handshake(get, minimalWith("Connection", "Connection: keep-alive")...), 400,
			notUpgrade},
		{"missing key", handshake(get, minimalWith("Sec-WebSocket-Key")...), 400, badKey},
		{"duplicate key", handshake(get, minimalWith("", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==")...), 400,
			badKey},
		{"key of 15 bytes", handshake(get, minimalWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA")...),
			400, badKey},
		{"key of 17 bytes", handshake(get, minimalWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=")...),
			400, badKey},
		{"key unpadded", handshake(get, minimalWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ")...),
			400, badKey},
		{"key non-canonical", handshake(get, minimalWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==")...),
			400, badKey},
		{"key url alphabet", handshake(get, minimalWith("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j_Q==")...),
			400, badKey},
		{"missing version", handshake(get, minimalWith("Sec-WebSocket-Version")...), 426, badVersion},
		{"version 8", handshake(get, minimalWith("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")...), 426,
			badVersion},
		{"version list", handshake(get, minimalWith("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8")...), 426,
			badVersion},
		{"duplicate version", handshake(get, minimalWith("", "Sec-WebSocket-Version: 13")...), 426, badVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRequest([]byte(tt.head), nil)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			rj := ValidateUpgrade(&r)
			if rj == nil {
				t.Fatal("ValidateUpgrade accepted the request")
			}
			if rj.Status != tt.wantStatus || rj.Reason != tt.wantReason {
				t.Errorf("refusal = %d %q, want %d %q", rj.Status, rj.Reason, tt.wantStatus, tt.wantReason)
			}

			// Only the version refusal names a header to send back.
			wantHeader, wantValue := "", ""
			if tt.wantStatus == 426 {
				wantHeader, wantValue = "Sec-WebSocket-Version", "13"
			}
			if rj.Header != wantHeader || rj.Value != wantValue {
				t.Errorf("header = %q: %q, want %q: %q", rj.Header, rj.Value, wantHeader, wantValue)
			}
		})
	}
}

func TestRejectError(t *testing.T) {
	t.Parallel()
	var err error = &Reject{Status: 426, Reason: "unsupported websocket version"}
	if got, want := err.Error(), "httphead: handshake refused with 426: unsupported websocket version"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAcceptKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key, want string
	}{
		// RFC 6455 section 1.3.
		{"rfc 6455 example", "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
		// Longer than a valid key: must not be truncated to the stack buffer.
		{"long key", strings.Repeat("A", 40), "NxYEIl52w+su0lh863QC70fyRyc="},
		{"empty key", "", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := AcceptKey([]byte(tt.key)); got != tt.want {
				t.Errorf("AcceptKey(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}
