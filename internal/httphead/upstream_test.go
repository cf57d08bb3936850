package httphead

import (
	"strings"
	"testing"
)

func TestAppendUpstreamRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		head     string
		target   string
		clientIP string
		proto    string
		want     string
	}{
		{
			name: "strips and replaces",
			head: handshake("GET /chat?x=1 HTTP/1.1",
				"Host: example.com",
				"X-Forwarded-For: 6.6.6.6",
				"Upgrade: websocket",
				"Connection: keep-alive, Upgrade, X-Secret",
				"Keep-Alive: timeout=5",
				"X-Secret: hunter2",
				"Origin: https://example.com",
				"x-real-ip: 6.6.6.6",
				"Forwarded: for=6.6.6.6",
				"X-Forwarded-Proto: https",
				"X-Forwarded-Host: evil.example",
				"Proxy-Authorization: Basic Zm9vOmJhcg==",
				"Proxy-Connection: keep-alive",
				"TE: trailers",
				"Trailer: X",
				"Cookie: a=1",
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
				"sec-websocket-version: 13",
				"Sec-WebSocket-Protocol: chat, superchat",
				"Sec-WebSocket-Extensions: permessage-deflate",
				"X-Empty:",
			),
			target: "/chat?x=1", clientIP: "203.0.113.7", proto: "https",
			want: "GET /chat?x=1 HTTP/1.1\r\n" +
				"Host: example.com\r\n" +
				"Origin: https://example.com\r\n" +
				"Cookie: a=1\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
				"sec-websocket-version: 13\r\n" +
				"Sec-WebSocket-Protocol: chat, superchat\r\n" +
				"Sec-WebSocket-Extensions: permessage-deflate\r\n" +
				"X-Empty: \r\n" +
				"Connection: Upgrade\r\n" +
				"Upgrade: websocket\r\n" +
				"X-Forwarded-For: 203.0.113.7\r\n" +
				"X-Real-IP: 203.0.113.7\r\n" +
				"X-Forwarded-Proto: https\r\n" +
				"X-Forwarded-Host: example.com\r\n" +
				"\r\n",
		},
		{
			name: "connection tokens on a second line, and handshake fields kept",
			head: handshake("GET / HTTP/1.1",
				"Host: example.com",
				"Connection: Upgrade",
				"Connection: X-A, host, Sec-WebSocket-Key, sec-websocket-version, Origin",
				"X-A: 1",
				"Origin: o",
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
				"Sec-WebSocket-Version: 13",
			),
			target: "/", clientIP: "::1", proto: "http",
			want: "GET / HTTP/1.1\r\n" +
				"Host: example.com\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
				"Sec-WebSocket-Version: 13\r\n" +
				"Connection: Upgrade\r\nUpgrade: websocket\r\n" +
				"X-Forwarded-For: ::1\r\nX-Real-IP: ::1\r\n" +
				"X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com\r\n\r\n",
		},
		{
			name:   "rewritten target, empty values left out",
			head:   handshake("GET /api/chat HTTP/1.1", "X: y"),
			target: "/chat",
			want: "GET /chat HTTP/1.1\r\nX: y\r\n" +
				"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		},
		{
			name:   "caller bytes cannot split the head",
			head:   handshake("GET / HTTP/1.1", "Host: h"),
			target: "/a b\r\nX-Injected: 1\r\n", clientIP: "1.2.3.4\r\nX-Injected: 2", proto: "https\n",
			want: "GET /abX-Injected:1 HTTP/1.1\r\nHost: h\r\n" +
				"Connection: Upgrade\r\nUpgrade: websocket\r\n" +
				"X-Forwarded-For: 1.2.3.4X-Injected: 2\r\nX-Real-IP: 1.2.3.4X-Injected: 2\r\n" +
				"X-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n\r\n",
		},
		{
			name:   "empty target becomes slash",
			head:   handshake("GET / HTTP/1.1"),
			target: " \r\n",
			want:   "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRequest([]byte(tt.head), nil)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			got := AppendUpstreamRequest([]byte("prefix"), &r, &Forward{Target: []byte(tt.target), ForwardedFor: tt.clientIP, RealIP: tt.clientIP, Proto: tt.proto})
			if !strings.HasPrefix(string(got), "prefix") {
				t.Fatalf("dst prefix lost: %q", got)
			}
			if got := string(got[len("prefix"):]); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestAppendUpstreamRequestIsValidHandshake(t *testing.T) {
	t.Parallel()
	r, err := ParseRequest([]byte(browserHandshake), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := AppendUpstreamRequest(nil, &r, &Forward{Target: r.Target, ForwardedFor: "198.51.100.2", RealIP: "198.51.100.2", Proto: "https"})

	up, err := ParseRequest(out, nil)
	if err != nil {
		t.Fatalf("upstream head does not parse: %v\n%s", err, out)
	}
	if rj := ValidateUpgrade(&up); rj != nil {
		t.Fatalf("upstream head is not a valid upgrade: %v\n%s", rj, out)
	}
	if got := up.Get("Sec-WebSocket-Key"); string(got) != string(r.Get("Sec-WebSocket-Key")) {
		t.Errorf("key changed: %q", got)
	}
	if n := up.Count("X-Forwarded-For"); n != 1 {
		t.Errorf("%d X-Forwarded-For lines, want 1", n)
	}
}

func TestAppendUpstreamRequestSkipsBadNames(t *testing.T) {
	t.Parallel()
	// A Request built in code rather than parsed may hold anything.
	r := Request{Fields: Fields{
		{Name: []byte("Bad\r\nName"), Value: []byte("x")},
		{Name: []byte(""), Value: []byte("x")},
		{Name: []byte("Good"), Value: []byte("a\r\nb\x00c")},
	}}
	got := string(AppendUpstreamRequest(nil, &r, &Forward{Target: []byte("/"), ForwardedFor: "", RealIP: "", Proto: ""}))
	want := "GET / HTTP/1.1\r\nGood: abc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestAppendUpstreamRequestAllocations is not parallel: AllocsPerRun counts
// the whole process's allocations.
func TestAppendUpstreamRequestAllocations(t *testing.T) {
	r, err := ParseRequest([]byte(browserHandshake), nil)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, MaxHeadSize)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendUpstreamRequest(dst[:0], &r, &Forward{Target: r.Target, ForwardedFor: "203.0.113.7", RealIP: "203.0.113.7", Proto: "https"})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run with room in dst, want 0", allocs)
	}
}

func TestAppendUpstreamRequestForwardChanges(t *testing.T) {
	t.Parallel()
	head := "GET /ws?access_token=x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: wsguard.bearer, bearer.t0k\r\nSec-WebSocket-Protocol: chat\r\n" +
		"X-User: mallory\r\nx-user: eve\r\n\r\n"
	r, err := ParseRequest([]byte(head), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    Forward
		want []string // lines that must appear
		not  []string // substrings that must not
	}{
		{"replace protocols and set user",
			Forward{Target: []byte("/ws"), ForwardedFor: "192.0.2.1, 10.0.0.1", RealIP: "192.0.2.1",
				Protocols: []byte("chat"), UserHeader: "X-User", User: "alice"},
			[]string{"GET /ws HTTP/1.1", "Sec-WebSocket-Protocol: chat", "X-User: alice",
				"X-Forwarded-For: 192.0.2.1, 10.0.0.1", "X-Real-IP: 192.0.2.1"},
			[]string{"bearer", "mallory", "eve", "access_token"}},
		{"drop protocols, anonymous user",
			Forward{Target: []byte("/ws"), Protocols: []byte{}, UserHeader: "X-User"},
			nil, []string{"Sec-WebSocket-Protocol", "X-User", "mallory"}},
		{"unchanged protocols",
			Forward{Target: r.Target},
			[]string{"Sec-WebSocket-Protocol: wsguard.bearer, bearer.t0k", "Sec-WebSocket-Protocol: chat", "X-User: mallory"},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(AppendUpstreamRequest(nil, &r, &tt.f))
			for _, w := range tt.want {
				if !strings.Contains(got, w+"\r\n") {
					t.Errorf("missing line %q in\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("%q must not reach the upstream:\n%s", n, got)
				}
			}
		})
	}
}
