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

// The helpers below build variants of a minimal handshake to GET /chat.

// withLine replaces the request line.
func withLine(requestLine string) string {
	return handshake(requestLine, minimalFields...)
}

// with adds field lines.
func with(lines ...string) string {
	return handshake("GET /chat HTTP/1.1", minimalWith("", lines...)...)
}

// without removes the field called name.
func without(name string) string {
	return handshake("GET /chat HTTP/1.1", minimalWith(name)...)
}

// replaced replaces the field called name by the given lines.
func replaced(name string, lines ...string) string {
	return handshake("GET /chat HTTP/1.1", minimalWith(name, lines...)...)
}

func TestValidateUpgradeAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		head string
	}{
		{"minimal", with()},
		{"browser", browserHandshake},
		{"connection list", replaced("Connection", "Connection: keep-alive, Upgrade")},
		{"connection on two lines", replaced("Connection", "Connection: keep-alive", "Connection: upgrade")},
		{"upgrade case", replaced("Upgrade", "Upgrade: WebSocket")},
		{"content-length zero", with("Content-Length: 0")},
		{"host with port", replaced("Host", "Host: example.com:8080")},
		{"ipv6 host", replaced("Host", "Host: [2001:db8::1]:443")},
		{"query", withLine("GET /chat?token=a%20b&x=1 HTTP/1.1")},
		{"http/1.2", withLine("GET / HTTP/1.2")},
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
		notGET     = "not a websocket upgrade: method must be GET"
		not11      = "not a websocket upgrade: HTTP/1.1 required"
		badTarget  = "invalid request target"
		badHost    = "invalid host header"
		hasBody    = "unexpected request body"
		notUpgrade = "not a websocket upgrade"
		badKey     = "invalid Sec-WebSocket-Key"
		badVersion = "unsupported websocket version"
		key        = "Sec-WebSocket-Key"
		version    = "Sec-WebSocket-Version"
	)
	tests := []struct {
		name       string
		head       string
		wantStatus int
		wantReason string
	}{
		{"post", withLine("POST /chat HTTP/1.1"), 400, notGET},
		{"lower-case get", withLine("get /chat HTTP/1.1"), 400, notGET},
		{"http/1.0", withLine("GET /chat HTTP/1.0"), 400, not11},
		{"http/2.0", withLine("GET /chat HTTP/2.0"), 400, not11},
		{"absolute-form target", withLine("GET http://example.com/chat HTTP/1.1"), 400, badTarget},
		{"asterisk target", withLine("GET * HTTP/1.1"), 400, badTarget},
		{"fragment in target", withLine("GET /chat#x HTTP/1.1"), 400, badTarget},
		{"missing host", without("Host"), 400, "missing host header"},
		{"duplicate host", with("Host: evil.example"), 400, "duplicate host header"},
		{"duplicate identical host", with("host: example.com"), 400, "duplicate host header"},
		{"empty host", replaced("Host", "Host:"), 400, badHost},
		{"space in host", replaced("Host", "Host: a b"), 400, badHost},
		{"path in host", replaced("Host", "Host: a/b"), 400, badHost},
		{"userinfo in host", replaced("Host", "Host: user@a"), 400, badHost},
		{"content-length and transfer-encoding",
			with("Content-Length: 5", "Transfer-Encoding: chunked"), 400, hasBody},
		{"transfer-encoding", with("Transfer-Encoding: chunked"), 400, hasBody},
		{"content-length", with("Content-Length: 5"), 400, hasBody},
		{"content-length 00", with("Content-Length: 00"), 400, hasBody},
		{"two content-lengths", with("Content-Length: 0", "Content-Length: 0"), 400, hasBody},
		{"no upgrade", without("Upgrade"), 400, notUpgrade},
		{"upgrade h2c", replaced("Upgrade", "Upgrade: h2c"), 400, notUpgrade},
		{"no connection", without("Connection"), 400, notUpgrade},
		{"connection keep-alive", replaced("Connection", "Connection: keep-alive"), 400, notUpgrade},
		{"missing key", without(key), 400, badKey},
		{"duplicate key", with(key + ": AAAAAAAAAAAAAAAAAAAAAA=="), 400, badKey},
		{"key of 15 bytes", replaced(key, key+": AAAAAAAAAAAAAAAAAAAA"), 400, badKey},
		{"key of 17 bytes", replaced(key, key+": AAAAAAAAAAAAAAAAAAAAAAA="), 400, badKey},
		{"key unpadded", replaced(key, key+": dGhlIHNhbXBsZSBub25jZQ"), 400, badKey},
		{"key non-canonical", replaced(key, key+": dGhlIHNhbXBsZSBub25jZR=="), 400, badKey},
		{"key url alphabet", replaced(key, key+": dGhlIHNhbXBsZSBub25j_Q=="), 400, badKey},
		{"missing version", without(version), 426, badVersion},
		{"version 8", replaced(version, version+": 8"), 426, badVersion},
		{"version list", replaced(version, version+": 13, 8"), 426, badVersion},
		{"duplicate version", with(version + ": 13"), 426, badVersion},
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
	want := "httphead: handshake refused with 426: unsupported websocket version"
	if got := err.Error(); got != want {
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
