package httphead

import (
	"errors"
	"strings"
	"testing"
)

// browserHandshake is an opening handshake as a desktop browser sends it,
// about 600 bytes.
const browserHandshake = "GET /chat?room=lobby HTTP/1.1\r\n" +
	"Host: app.example.com\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " +
	"Chrome/126.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: https://app.example.com\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n" +
	"Cookie: session=7f3a9c2e1b8d4f60a5e7c3b1d9f2a4e6; theme=dark; consent=1\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
	"\r\n"

// wantParseError fails t unless err is a *ParseError with reason.
func wantParseError(t *testing.T, err error, reason string) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *ParseError %q", err, reason)
	}
	if pe.Reason != reason {
		t.Fatalf("reason = %q, want %q", pe.Reason, reason)
	}
}

func TestParseRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		head       string
		wantMethod string
		wantTarget string
		wantMinor  int
		wantFields []string // "name=value"
	}{
		{name: "crlf", head: "GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n",
			wantMethod: "GET", wantTarget: "/a?b", wantMinor: 1, wantFields: []string{"Host=x"}},
		{name: "bare lf", head: "GET / HTTP/1.0\nHost: x\nA: b\n\n",
			wantMethod: "GET", wantTarget: "/", wantMinor: 0, wantFields: []string{"Host=x", "A=b"}},
		{name: "no fields", head: "OPTIONS * HTTP/1.1\r\n\r\n",
			wantMethod: "OPTIONS", wantTarget: "*", wantMinor: 1},
		{name: "value trimmed of spaces and tabs", head: "GET / HTTP/1.1\r\nX: \t a b \t\r\n\r\n",
			wantMethod: "GET", wantTarget: "/", wantMinor: 1, wantFields: []string{"X=a b"}},
		{name: "empty value", head: "GET / HTTP/1.1\r\nX:\r\nY:   \r\n\r\n",
			wantMethod: "GET", wantTarget: "/", wantMinor: 1, wantFields: []string{"X=", "Y="}},
		{name: "colon and obs-text in value", head: "GET / HTTP/1.1\r\nX: a:b \xc3\xa9\r\n\r\n",
			wantMethod: "GET", wantTarget: "/", wantMinor: 1, wantFields: []string{"X=a:b \xc3\xa9"}},
		{name: "token characters in name", head: "GET / HTTP/1.1\r\n!#$%&'*+-.^_`|~09aZ: v\r\n\r\n",
			wantMethod: "GET", wantTarget: "/", wantMinor: 1,
			wantFields: []string{"!#$%&'*+-.^_`|~09aZ=v"}},
		{name: "exactly the field limit", head: "GET / HTTP/1.1\r\n" +
			strings.Repeat("A: b\r\n", MaxFields) + "\r\n",
			wantMethod: "GET", wantTarget: "/", wantMinor: 1,
			wantFields: strings.Split(strings.Repeat("A=b,", MaxFields-1)+"A=b", ",")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRequest([]byte(tt.head), nil)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if string(r.Method) != tt.wantMethod || string(r.Target) != tt.wantTarget {
				t.Errorf("method, target = %q, %q; want %q, %q",
					r.Method, r.Target, tt.wantMethod, tt.wantTarget)
			}
			if r.Major != 1 || r.Minor != tt.wantMinor {
				t.Errorf("version = %d.%d, want 1.%d", r.Major, r.Minor, tt.wantMinor)
			}
			if len(r.Fields) != len(tt.wantFields) {
				t.Fatalf("got %d fields, want %d", len(r.Fields), len(tt.wantFields))
			}
			for i, f := range r.Fields {
				if got := string(f.Name) + "=" + string(f.Value); got != tt.wantFields[i] {
					t.Errorf("field %d = %q, want %q", i, got, tt.wantFields[i])
				}
			}
		})
	}
}

func TestParseRequestRefuses(t *testing.T) {
	t.Parallel()
	const line = "GET / HTTP/1.1\r\n"
	tests := []struct {
		name, head, reason string
	}{
		{"empty", "", "empty head"},
		{"only an empty line", "\r\n", "empty head"},
		{"no terminator", line + "Host: x\r\n", "head not terminated by an empty line"},
		{"no final lf", line + "Host: x\r\n\r", "head not terminated by an empty line"},
		{"data after head", line + "\r\nGET", "data after end of head"},
		{"second request after head", line + "\r\n" + line + "\r\n", "data after end of head"},
		{"no spaces", "GET/HTTP/1.1\r\n\r\n", "malformed request line"},
		{"two spaces after method", "GET  / HTTP/1.1\r\n\r\n", "malformed request line"},
		{"leading space", " GET / HTTP/1.1\r\n\r\n", "malformed request line"},
		{"missing version", "GET /\r\n\r\n", "malformed request line"},
		{"tab separator", "GET\t/ HTTP/1.1\r\n\r\n", "invalid method"},
		{"method not a token", "G(T / HTTP/1.1\r\n\r\n", "invalid method"},
		{"nul in target", "GET /\x00 HTTP/1.1\r\n\r\n", "invalid request target"},
		{"non-ascii target", "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", "invalid request target"},
		{"two spaces before version", "GET /  HTTP/1.1\r\n\r\n", "invalid http version"},
		{"space in target", "GET /a b HTTP/1.1\r\n\r\n", "invalid http version"},
		{"trailing space", "GET / HTTP/1.1 \r\n\r\n", "invalid http version"},
		{"lower-case version", "GET / http/1.1\r\n\r\n", "invalid http version"},
		{"two-digit version", "GET / HTTP/1.10\r\n\r\n", "invalid http version"},
		{"bare cr ends request line", "GET / HTTP/1.1\r\r\n\r\n", "invalid http version"},
		{"obs-fold", line + "X: a\r\n b\r\n\r\n", "obsolete line folding"},
		{"obs-fold with tab", line + "X: a\r\n\tb\r\n\r\n", "obsolete line folding"},
		{"space before first field", line + " Host: x\r\n\r\n", "obsolete line folding"},
		{"space before colon", line + "Host : x\r\n\r\n", "whitespace before colon in header"},
		{"tab before colon", line + "Host\t: x\r\n\r\n", "whitespace before colon in header"},
		{"space inside name", line + "Ho st: x\r\n\r\n", "invalid header name"},
		{"empty name", line + ": x\r\n\r\n", "invalid header name"},
		{"non-token name", line + "Ho\"st: x\r\n\r\n", "invalid header name"},
		{"nul in name", line + "Ho\x00st: x\r\n\r\n", "invalid header name"},
		{"no colon", line + "Host x\r\n\r\n", "header line without colon"},
		{"nul in value", line + "X: a\x00b\r\n\r\n", "header value contains control character"},
		{"bare cr in value", line + "X: a\rInjected: 1\r\n\r\n", "header value contains control character"},
		{"cr before crlf", line + "X: a\r\r\n\r\n", "header value contains control character"},
		{"escape in value", line + "X: a\x1bb\r\n\r\n", "header value contains control character"},
		{"del in value", line + "X: a\x7fb\r\n\r\n", "header value contains control character"},
		{"bare cr line", line + "\r\r\n\r\n", "header line without colon"},
		{"too many fields", line + strings.Repeat("A: b\r\n", MaxFields+1) + "\r\n", "too many header fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseRequest([]byte(tt.head), nil)
			wantParseError(t, err, tt.reason)
			if r.Method != nil || r.Fields != nil {
				t.Errorf("got a partial request %+v with the error", r)
			}
		})
	}
}

func TestParseErrorStatus(t *testing.T) {
	t.Parallel()
	tooMany := "GET / HTTP/1.1\r\n" + strings.Repeat("A: b\r\n", MaxFields+1) + "\r\n"
	_, err := ParseRequest([]byte(tooMany), nil)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Status != 431 {
		t.Fatalf("too many fields: err = %v, want status 431", err)
	}
	_, err = ParseRequest([]byte("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), nil)
	if !errors.As(err, &pe) || pe.Status != 400 {
		t.Fatalf("bad name: err = %v, want status 400", err)
	}
	if got, want := err.Error(), "httphead: whitespace before colon in header"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		head       string
		wantStatus int
		wantReason string
		wantErr    string // reason of the *ParseError, empty for success
	}{
		{name: "switching protocols", head: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
			wantStatus: 101, wantReason: "Switching Protocols"},
		{name: "no reason", head: "HTTP/1.1 101\r\n\r\n", wantStatus: 101},
		{name: "empty reason", head: "HTTP/1.1 404 \r\n\r\n", wantStatus: 404},
		{name: "bare lf", head: "HTTP/1.0 503 Busy\n\n", wantStatus: 503, wantReason: "Busy"},
		{name: "reason with tab and obs-text", head: "HTTP/1.1 200 O\tK \xff\r\n\r\n",
			wantStatus: 200, wantReason: "O\tK \xff"},
		{name: "two-digit status", head: "HTTP/1.1 20 OK\r\n\r\n", wantErr: "invalid status code"},
		{name: "four-digit status", head: "HTTP/1.1 2000 OK\r\n\r\n", wantErr: "malformed status line"},
		{name: "leading zero", head: "HTTP/1.1 099 OK\r\n\r\n", wantErr: "invalid status code"},
		{name: "letter in status", head: "HTTP/1.1 1o1 OK\r\n\r\n", wantErr: "invalid status code"},
		{name: "no space after version", head: "HTTP/1.1101 OK\r\n\r\n", wantErr: "malformed status line"},
		{name: "bad version", head: "HTTP/x.1 101 OK\r\n\r\n", wantErr: "invalid http version"},
		{name: "control in reason", head: "HTTP/1.1 101 O\x00K\r\n\r\n",
			wantErr: "reason phrase contains control character"},
		{name: "bare cr in reason", head: "HTTP/1.1 101 OK\r\r\n\r\n",
			wantErr: "reason phrase contains control character"},
		{name: "bad field", head: "HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n",
			wantErr: "whitespace before colon in header"},
		{name: "request instead", head: "GET / HTTP/1.1\r\n\r\n", wantErr: "malformed status line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseResponse([]byte(tt.head), nil)
			if tt.wantErr != "" {
				wantParseError(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if r.Status != tt.wantStatus || string(r.Reason) != tt.wantReason {
				t.Errorf("status, reason = %d, %q; want %d, %q",
					r.Status, r.Reason, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

func TestFieldLookups(t *testing.T) {
	t.Parallel()
	r, err := ParseRequest([]byte("GET /p/q?x=1?y HTTP/1.1\r\n"+
		"Connection: keep-alive, Upgrade\r\n"+
		"connection: ,  X-Drop ,\r\n"+
		"X-Empty:\r\n"+
		"Upgrade: WebSocket\r\n\r\n"), nil)
	if err != nil {
		t.Fatal(err)
	}

	if got := r.Get("CONNECTION"); string(got) != "keep-alive, Upgrade" {
		t.Errorf("Get(CONNECTION) = %q, want the first line's value", got)
	}
	if got := r.Get("X-Empty"); got == nil || len(got) != 0 {
		t.Errorf("Get(X-Empty) = %#v, want empty non-nil", got)
	}
	if got := r.Get("Missing"); got != nil {
		t.Errorf("Get(Missing) = %q, want nil", got)
	}
	if got := r.Get("Connectio"); got != nil {
		t.Errorf("Get(Connectio) = %q, want nil: prefixes must not match", got)
	}
	if n := r.Count("connection"); n != 2 {
		t.Errorf("Count(connection) = %d, want 2", n)
	}
	if got := r.Path(); string(got) != "/p/q" {
		t.Errorf("Path() = %q, want %q", got, "/p/q")
	}

	tokens := []struct {
		name, token string
		want        bool
	}{
		{"Connection", "upgrade", true},
		{"Connection", "KEEP-ALIVE", true},
		{"Connection", "x-drop", true}, // second line, padded
		{"Connection", "keep", false},  // prefix of an element
		{"Connection", "", false},      // empty elements exist, but never match
		{"Upgrade", "websocket", true}, // case-insensitive
		{"Upgrade", "websocket/13", false},
		{"Missing", "upgrade", false},
	}
	for _, tc := range tokens {
		if got := r.HasToken(tc.name, tc.token); got != tc.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", tc.name, tc.token, got, tc.want)
		}
	}
}

func TestEqualFoldIsASCIIOnly(t *testing.T) {
	t.Parallel()
	// U+212A KELVIN SIGN folds to 'k' under Unicode rules.
	if equalFold([]byte("\u212aeep-Alive"), "Keep-Alive") {
		t.Error("Kelvin sign matched K")
	}
	if !equalFold([]byte("SEC-websocket-KEY"), "Sec-WebSocket-Key") {
		t.Error("ASCII case folding failed")
	}
}

// TestParseAllocations is not parallel: AllocsPerRun counts the whole
// process's allocations, so it runs while no parallel test does.
func TestParseAllocations(t *testing.T) {
	head := []byte(browserHandshake)
	fields := make([]Field, 0, MaxFields)
	allocs := testing.AllocsPerRun(100, func() {
		r, err := ParseRequest(head, fields)
		if err != nil || ValidateUpgrade(&r) != nil || !r.HasToken("Connection", "upgrade") {
			panic("handshake refused")
		}
		_ = r.Get("Origin")
	})
	if allocs != 0 {
		t.Errorf("ParseRequest+ValidateUpgrade: %v allocations per run, want 0", allocs)
	}

	bad := []byte("GET / HTTP/1.1\r\nHost : x\r\n\r\n")
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := ParseRequest(bad, fields); err == nil {
			panic("bad head accepted")
		}
	})
	if allocs != 0 {
		t.Errorf("refused ParseRequest: %v allocations per run, want 0", allocs)
	}
}
