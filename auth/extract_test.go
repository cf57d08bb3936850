package auth

import (
	"testing"
)

// unchanged marks an expected Target or Protocols of nil.
const unchanged = "<unchanged>"

var allSources = []Source{SourceHeader, SourceQuery, SourceCookie, SourceSubprotocol}

// extracted is what a TestExtract case expects: the token and its source
// (none when token is empty), and the forwarded target, protocols and echo.
type extracted struct {
	token          string
	source         Source
	target, protos string
	echo           string
}

func TestExtract(t *testing.T) {
	t.Parallel()
	const swp = "Sec-WebSocket-Protocol: "
	only := func(s Source) []Source { return []Source{s} }
	none := extracted{target: unchanged, protos: unchanged}
	header := extracted{token: "a.b.c", source: SourceHeader, target: unchanged, protos: unchanged}
	cookie := extracted{token: "a.b.c", source: SourceCookie, target: unchanged, protos: unchanged}
	query := func(target string) extracted {
		return extracted{token: "a.b.c", source: SourceQuery, target: target, protos: unchanged}
	}
	sub := func(protos, echo string) extracted {
		return extracted{"a.b.c", SourceSubprotocol, unchanged, protos, echo}
	}

	tests := []struct {
		name    string
		sources []Source
		target  string
		lines   []string
		want    extracted
	}{
		{"header", nil, "/chat", []string{"Authorization: Bearer a.b.c"}, header},
		{
			"header scheme in lower case, extra spaces", nil, "/chat",
			[]string{"Authorization: bearer    a.b-c_d~e+f/g=="},
			extracted{"a.b-c_d~e+f/g==", SourceHeader, unchanged, unchanged, ""},
		},
		{"another scheme is not a token", nil, "/", []string{"Authorization: Basic YTpi"}, none},
		{
			"query, others kept as sent", nil, "/chat?room=1&access_token=a.b.c&x=%2F+y&&z", nil,
			query("/chat?room=1&x=%2F+y&&z"),
		},
		{"query, only the token", nil, "/chat?access_token=a.b.c", nil, query("/chat")},
		{
			"query, percent-encoded name and value", nil, "/c?access%5Ftoken=a%2Eb.c&n=1", nil,
			query("/c?n=1"),
		},
		{"query without the parameter", nil, "/c?access_tokens=x&token=y", nil, none},
		{"query names are case-sensitive", nil, "/c?Access_Token=x", nil, none},
		{
			"cookie", only(SourceCookie), "/",
			[]string{"Cookie: a=1; access_token=a.b.c; b=2"}, cookie,
		},
		{
			"cookie on a second line, quoted", only(SourceCookie), "/",
			[]string{"Cookie: a=1", `Cookie: b=2;access_token="a.b.c"`}, cookie,
		},
		{
			"subprotocol", only(SourceSubprotocol), "/",
			[]string{swp + "wsguard.bearer, bearer.a.b.c, chat.v1"}, sub("chat.v1", BearerProtocol),
		},
		{
			"subprotocol over two lines", only(SourceSubprotocol), "/",
			[]string{swp + "chat.v2,bearer.a.b.c", swp + "wsguard.bearer ,chat.v1"},
			sub("chat.v2, chat.v1", BearerProtocol),
		},
		{
			"subprotocol, nothing else offered", only(SourceSubprotocol), "/",
			[]string{swp + "wsguard.bearer, bearer.a.b.c"}, sub("", BearerProtocol),
		},
		{
			"bearer entry without wsguard.bearer: no echo", only(SourceSubprotocol), "/",
			[]string{swp + "bearer.a.b.c, chat.v1"}, sub("chat.v1", ""),
		},
		{
			"wsguard.bearer without a token", only(SourceSubprotocol), "/",
			[]string{swp + "wsguard.bearer, chat.v1"},
			extracted{target: unchanged, protos: "chat.v1", echo: BearerProtocol},
		},
		{
			"subprotocol entries are case-sensitive", only(SourceSubprotocol), "/",
			[]string{swp + "Bearer.x, WSGUARD.BEARER"}, none,
		},
		{
			"first source in order wins, query still scrubbed",
			[]Source{SourceHeader, SourceQuery}, "/c?access_token=q.q.q",
			[]string{"Authorization: Bearer a.b.c"},
			extracted{"a.b.c", SourceHeader, "/c", unchanged, ""},
		},
		{
			"reversed order", []Source{SourceQuery, SourceHeader}, "/c?access_token=a.b.c",
			[]string{"Authorization: Bearer h.h.h"}, query("/c"),
		},
		{
			"every source, subprotocol first",
			[]Source{SourceSubprotocol, SourceCookie, SourceQuery, SourceHeader},
			"/c?access_token=q.q.q&r=1",
			[]string{
				"Authorization: Bearer h.h.h", "Cookie: access_token=c.c.c",
				swp + "chat, bearer.a.b.c, wsguard.bearer",
			},
			extracted{"a.b.c", SourceSubprotocol, "/c?r=1", "chat", BearerProtocol},
		},
		{
			"unconfigured sources are left alone", nil, "/c",
			[]string{"Cookie: access_token=c.c.c", swp + "wsguard.bearer, bearer.s.s.s"}, none,
		},
		{
			"nothing", allSources, "/c?a=1",
			[]string{"Cookie: a=b", swp + "chat"}, none,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := secretOpts(t)
			o.Sources = tt.sources
			a := newTestAuth(t, o, nil)
			c, found, err := a.Extract(request(t, tt.target, tt.lines...))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			w := tt.want
			if found != (w.token != "") || c.Token != w.token || c.Source != w.source {
				t.Errorf("found, token, source = %v, %q, %v; want %q, %v",
					found, c.Token, c.Source, w.token, w.source)
			}
			checkBytes(t, "Target", c.Target, w.target)
			checkBytes(t, "Protocols", c.Protocols, w.protos)
			if c.Echo != w.echo {
				t.Errorf("Echo = %q, want %q", c.Echo, w.echo)
			}
		})
	}
}

func checkBytes(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	switch {
	case want == unchanged && got != nil:
		t.Errorf("%s = %q, want nil", what, got)
	case want != unchanged && got == nil:
		t.Errorf("%s = nil, want %q", what, want)
	case want != unchanged && string(got) != want:
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestExtractRefused(t *testing.T) {
	t.Parallel()
	const authz, swp = "Authorization: ", "Sec-WebSocket-Protocol: "
	tests := []struct {
		name   string
		target string
		lines  []string
	}{
		{"two Authorization lines", "/", []string{authz + "Bearer a.b.c", authz + "Bearer a.b.c"}},
		{"two Authorization lines, one Basic", "/", []string{authz + "Basic YTpi", authz + "Bearer a"}},
		{"Bearer without token", "/", []string{"Authorization: Bearer"}},
		{"Bearer with blank token", "/", []string{"Authorization: Bearer    "}},
		{"Bearer with two tokens", "/", []string{"Authorization: Bearer a.b.c d.e.f"}},
		{"Bearer with padding inside", "/", []string{"Authorization: Bearer a=b"}},
		{"Bearer with a comma", "/", []string{"Authorization: Bearer a,b"}},
		{"Bearer with a quote", "/", []string{`Authorization: Bearer "a.b.c"`}},
		{"query parameter twice", "/?access_token=a&access_token=b", nil},
		{"query parameter twice, one encoded", "/?access_token=a&access%5Ftoken=b", nil},
		{"query parameter empty", "/?access_token=", nil},
		{"query parameter without value", "/?x=1&access_token", nil},
		{"query parameter badly escaped", "/?access_token=%zz", nil},
		{"query parameter behind a semicolon", "/?x=1;access_token=a.b.c", nil},
		{"cookie twice", "/", []string{"Cookie: access_token=a; access_token=b"}},
		{"cookie twice on two lines", "/", []string{"Cookie: access_token=a", "Cookie: x=1; access_token=b"}},
		{"cookie empty", "/", []string{"Cookie: access_token="}},
		{"two bearer entries", "/", []string{"Sec-WebSocket-Protocol: bearer.a, bearer.b"}},
		{"two bearer entries on two lines", "/", []string{swp + "bearer.a", swp + "bearer.b"}},
		{"empty bearer entry", "/", []string{"Sec-WebSocket-Protocol: wsguard.bearer, bearer."}},
		{"bad header after a good query token", "/?access_token=a.b.c", []string{authz + "Bearer"}},
	}
	o := secretOpts(t)
	o.Sources = []Source{SourceQuery, SourceCookie, SourceSubprotocol, SourceHeader}
	a := newTestAuth(t, o, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, found, err := a.Extract(request(t, tt.target, tt.lines...))
			wantReason(t, err, "malformed")
			if e := err.(*Error); e.Code != codeInvalidRequest {
				t.Errorf("code = %q, want invalid_request", e.Code)
			}
			if found || c.Token != "" || c.Target != nil || c.Protocols != nil {
				t.Errorf("refusal came with a credential: %+v, %v", c, found)
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	t.Parallel()
	for _, s := range allSources {
		got, err := ParseSource(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSource(%q) = %v, %v", s.String(), got, err)
		}
	}
	for _, bad := range []string{"", "Header", "body", "bearer"} {
		if _, err := ParseSource(bad); err == nil {
			t.Errorf("ParseSource(%q) succeeded", bad)
		}
	}
	if got := Source(0).String(); got != "Source(0)" {
		t.Errorf("Source(0).String() = %q", got)
	}
}

func TestRequired(t *testing.T) {
	t.Parallel()
	for _, required := range []bool{false, true} {
		o := secretOpts(t)
		o.Required = required
		if got := newTestAuth(t, o, nil).Required(); got != required {
			t.Errorf("Required() = %v, want %v", got, required)
		}
	}
}
