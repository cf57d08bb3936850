package clientip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/wsguard/wsguard/internal/httphead"
)

// testTrusted are the proxies every Resolve test trusts.
var testTrusted = []string{"10.0.0.0/8", "2001:db8:a::/48"}

// newTestResolver returns a Resolver trusting testTrusted.
func newTestResolver(t testing.TB, h Header) *Resolver {
	t.Helper()
	trusted, err := ParseCIDRs(testTrusted)
	if err != nil {
		t.Fatal(err)
	}
	return NewResolver(trusted, h)
}

// fields turns "Name: value" lines into header fields the way
// httphead.ParseRequest would.
func fields(lines ...string) httphead.Fields {
	fs := make(httphead.Fields, 0, len(lines))
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			panic("no colon in " + l)
		}
		fs = append(fs, httphead.Field{
			Name:  []byte(name),
			Value: []byte(strings.Trim(value, " \t")),
		})
	}
	return fs
}

// xff repeats entry n times as one X-Forwarded-For list.
func xff(entry string, n int) string {
	return strings.TrimSuffix(strings.Repeat(entry+", ", n), ", ")
}

func TestResolve(t *testing.T) {
	t.Parallel()
	const (
		untrusted = "198.51.100.9"
		proxy     = "10.0.0.2"
		proxy2    = "10.0.0.3"
	)
	tests := []struct {
		name     string
		header   Header
		peer     string
		lines    []string
		addr     string
		chain    string
		via      string // "" for none
		unusable string
	}{
		// Spoofing from untrusted peers: every header is ignored.
		{"untrusted xff", HeaderXFF, untrusted,
			[]string{"X-Forwarded-For: 203.0.113.7"}, untrusted, untrusted, "", ""},
		{"untrusted xff looks trusted", HeaderXFF, untrusted,
			[]string{"X-Forwarded-For: 10.0.0.2"}, untrusted, untrusted, "", ""},
		{"untrusted forwarded", HeaderForwarded, untrusted,
			[]string{"Forwarded: for=203.0.113.7"}, untrusted, untrusted, "", ""},
		{"untrusted x-real-ip", HeaderXRealIP, untrusted,
			[]string{"X-Real-IP: 203.0.113.7"}, untrusted, untrusted, "", ""},
		{"untrusted garbage not reported", HeaderXFF, untrusted,
			[]string{"X-Forwarded-For: unknown"}, untrusted, untrusted, "", ""},
		{"untrusted mapped peer", HeaderXFF, "::ffff:198.51.100.9",
			[]string{"X-Forwarded-For: 203.0.113.7"}, untrusted, untrusted, "", ""},
		{"untrusted zoned peer", HeaderXFF, "fe80::1%eth0",
			[]string{"X-Forwarded-For: 203.0.113.7"}, "fe80::1", "fe80::1", "", ""},

		// X-Forwarded-For from trusted peers.
		{"no header", HeaderXFF, proxy, nil, proxy, proxy, "", ""},
		{"other headers ignored", HeaderXFF, proxy,
			[]string{"Forwarded: for=203.0.113.7", "X-Real-IP: 203.0.113.7"},
			proxy, proxy, "", ""},
		{"single proxy", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"two trusted hops", HeaderXFF, proxy2,
			[]string{"X-Forwarded-For: 203.0.113.7, 10.0.0.2"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"client prepends fakes", HeaderXFF, proxy2,
			[]string{"X-Forwarded-For: 6.6.6.6, 10.9.9.9, 203.0.113.7, 10.0.0.2"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"client prepends trusted address", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 10.1.1.1, 203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"garbage left of client", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: unknown, \"x\", 203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"ipv4 with port", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 203.0.113.7:4711"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"ipv6 bracketed with port", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: [2001:db8:beef::7]:443"},
			"2001:db8:beef::7", "2001:db8:beef::7, 10.0.0.2", proxy, ""},
		{"ipv6 bracketed", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: [2001:db8:beef::7]"},
			"2001:db8:beef::7", "2001:db8:beef::7, 10.0.0.2", proxy, ""},
		{"ipv6 bare, spaces and tabs", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: \t2001:DB8:BEEF:0::7 \t"},
			"2001:db8:beef::7", "2001:db8:beef::7, 10.0.0.2", proxy, ""},
		{"trusted hop with port", HeaderXFF, proxy2,
			[]string{"X-Forwarded-For: 203.0.113.7,10.0.0.2:8080"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"multiple lines", HeaderXFF, proxy2,
			[]string{
				"X-Forwarded-For: 6.6.6.6, 203.0.113.7",
				"Host: example.com",
				"x-forwarded-for: 10.0.0.2",
			},
			"203.0.113.7", "203.0.113.7, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"proxy adds its own line", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 6.6.6.6", "X-Forwarded-For: 203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"ipv6 peer", HeaderXFF, "2001:db8:a::1",
			[]string{"X-Forwarded-For: 2001:db8:beef::7"},
			"2001:db8:beef::7", "2001:db8:beef::7, 2001:db8:a::1", "2001:db8:a::1", ""},
		{"ipv4-mapped peer", HeaderXFF, "::ffff:10.0.0.2",
			[]string{"X-Forwarded-For: 203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"ipv4-mapped entries", HeaderXFF, proxy2,
			[]string{"X-Forwarded-For: ::ffff:203.0.113.7, [::ffff:10.0.0.2]:80"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"zoned entry", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: fe80::7%eth0"},
			"fe80::7", "fe80::7, 10.0.0.2", proxy, ""},
		{"all trusted", HeaderXFF, proxy2,
			[]string{"X-Forwarded-For: 10.0.0.1, 10.0.0.2"},
			"10.0.0.1", "10.0.0.1, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"all trusted, one entry", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 10.0.0.1"},
			"10.0.0.1", "10.0.0.1, 10.0.0.2", proxy, ""},
		{"empty value", HeaderXFF, proxy,
			[]string{"X-Forwarded-For:"}, proxy, proxy, "", ""},
		{"empty elements", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: , ,203.0.113.7, ,"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"unknown", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 203.0.113.7, unknown"}, proxy, proxy, "", "unknown"},
		{"obfuscated", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: _hidden"}, proxy, proxy, "", "_hidden"},
		{"garbage", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: not an address"}, proxy, proxy, "", "not an address"},
		{"unusable behind trusted hop", HeaderXFF, proxy2,
			[]string{"X-Forwarded-For: 203.0.113.7, 1.2.3, 10.0.0.2"},
			proxy2, proxy2, "", "1.2.3"},
		{"leading zero", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 010.0.0.1"}, proxy, proxy, "", "010.0.0.1"},
		{"bracketed ipv4", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: [203.0.113.7]:80"}, proxy, proxy, "", "[203.0.113.7]:80"},
		{"bad port", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 203.0.113.7:65536"}, proxy, proxy, "", "203.0.113.7:65536"},
		{"unusable is sanitised", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: \xc3\xa9vil\t1"}, proxy, proxy, "", "??vil?1"},
		{"unusable is cut short", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: " + strings.Repeat("x", 100)},
			proxy, proxy, "", strings.Repeat("x", 61) + "..."},

		// Forwarded (RFC 7239).
		{"forwarded single", HeaderForwarded, proxy,
			[]string{"Forwarded: for=203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded ipv6 quoted with port", HeaderForwarded, proxy,
			[]string{`Forwarded: for="[2001:db8:beef::7]:4711"`},
			"2001:db8:beef::7", "2001:db8:beef::7, 10.0.0.2", proxy, ""},
		{"forwarded ipv4 quoted with port", HeaderForwarded, proxy,
			[]string{`Forwarded: for="203.0.113.7:4711"`},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded obfuscated port", HeaderForwarded, proxy,
			[]string{`Forwarded: for="203.0.113.7:_p1"`},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded unquoted ipv6", HeaderForwarded, proxy,
			[]string{`Forwarded: for=[2001:db8:beef::7]:80`},
			"2001:db8:beef::7", "2001:db8:beef::7, 10.0.0.2", proxy, ""},
		{"forwarded mixed-case names", HeaderForwarded, proxy,
			[]string{"FORWARDED: Proto=https;FOR=203.0.113.7;By=10.0.0.2"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded chain", HeaderForwarded, proxy2,
			[]string{"Forwarded: for=6.6.6.6, for=203.0.113.7;proto=http, for=10.0.0.2"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"forwarded multiple lines", HeaderForwarded, proxy2,
			[]string{"Forwarded: for=6.6.6.6, for=203.0.113.7", "forwarded: for=10.0.0.2"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"forwarded comma and semicolon in quotes", HeaderForwarded, proxy,
			[]string{`Forwarded: for=6.6.6.6, for=203.0.113.7;ext="a,b;c=d, for=6.6.6.7"`},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded escapes", HeaderForwarded, proxy,
			[]string{`Forwarded: for="\[2001:db8:beef::7\]";x="a\"b, for=6.6.6.6"`},
			"2001:db8:beef::7", "2001:db8:beef::7, 10.0.0.2", proxy, ""},
		{"forwarded spaces around semicolons", HeaderForwarded, proxy,
			[]string{"Forwarded: proto=https ; for=203.0.113.7 ;"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded empty elements", HeaderForwarded, proxy,
			[]string{"Forwarded: , for=203.0.113.7, ;, "},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded empty line", HeaderForwarded, proxy,
			[]string{"Forwarded:"}, proxy, proxy, "", ""},
		{"forwarded broken element left of client", HeaderForwarded, proxy,
			[]string{`Forwarded: for=6.6.6.6 garbage!, for=203.0.113.7`},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded all trusted", HeaderForwarded, proxy2,
			[]string{"Forwarded: for=10.0.0.1, for=10.0.0.2"},
			"10.0.0.1", "10.0.0.1, 10.0.0.2, 10.0.0.3", proxy, ""},
		{"forwarded unknown", HeaderForwarded, proxy,
			[]string{"Forwarded: for=unknown"}, proxy, proxy, "", "unknown"},
		{"forwarded hidden", HeaderForwarded, proxy,
			[]string{`Forwarded: for="_hidden"`}, proxy, proxy, "", "_hidden"},
		{"forwarded obfuscated with port", HeaderForwarded, proxy,
			[]string{`Forwarded: for="_abc:_p"`}, proxy, proxy, "", "_abc:_p"},
		{"forwarded empty quoted", HeaderForwarded, proxy,
			[]string{`Forwarded: for=""`}, proxy, proxy, "", "(empty)"},
		{"forwarded empty token", HeaderForwarded, proxy,
			[]string{"Forwarded: for="}, proxy, proxy, "", "for="},
		{"forwarded no for", HeaderForwarded, proxy,
			[]string{"Forwarded: for=203.0.113.7, proto=https"}, proxy, proxy, "", "proto=https"},
		{"forwarded for twice", HeaderForwarded, proxy,
			[]string{"Forwarded: for=203.0.113.7;for=6.6.6.6"},
			proxy, proxy, "", "for=203.0.113.7;for=6.6.6.6"},
		{"forwarded list inside quotes", HeaderForwarded, proxy,
			[]string{`Forwarded: for="203.0.113.7, for=6.6.6.6"`},
			proxy, proxy, "", "203.0.113.7, for=6.6.6.6"},
		{"forwarded open quote swallows proxy element", HeaderForwarded, proxy,
			[]string{`Forwarded: for=6.6.6.6;x=", for=203.0.113.7`},
			proxy, proxy, "", `for=6.6.6.6;x=", for=203.0.113.7`},
		{"forwarded quote closed by proxy element", HeaderForwarded, proxy,
			[]string{`Forwarded: for=6.6.6.6;x=", for="[2001:db8:beef::7]"`},
			proxy, proxy, "", `for=6.6.6.6;x=", for="[2001:db8:beef::7]"`},
		{"forwarded open quote, proxy adds a line", HeaderForwarded, proxy,
			[]string{`Forwarded: for=6.6.6.6;x="`, "Forwarded: for=203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"forwarded space around equals", HeaderForwarded, proxy,
			[]string{"Forwarded: for = 203.0.113.7"}, proxy, proxy, "", "for = 203.0.113.7"},

		// X-Real-IP.
		{"x-real-ip", HeaderXRealIP, proxy,
			[]string{"X-Real-IP: 203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"x-real-ip trusted value", HeaderXRealIP, proxy,
			[]string{"x-real-ip: 10.0.0.9"}, "10.0.0.9", "10.0.0.9, 10.0.0.2", proxy, ""},
		{"x-real-ip bracketed with port", HeaderXRealIP, proxy,
			[]string{"X-Real-IP: [2001:db8:beef::7]:443"},
			"2001:db8:beef::7", "2001:db8:beef::7, 10.0.0.2", proxy, ""},
		{"x-real-ip missing", HeaderXRealIP, proxy,
			[]string{"X-Forwarded-For: 203.0.113.7"}, proxy, proxy, "", ""},
		{"x-real-ip two lines", HeaderXRealIP, proxy,
			[]string{"X-Real-IP: 203.0.113.7", "X-Real-IP: 203.0.113.8"},
			proxy, proxy, "", "(several X-Real-IP lines)"},
		{"x-real-ip list", HeaderXRealIP, proxy,
			[]string{"X-Real-IP: 203.0.113.7, 6.6.6.6"},
			proxy, proxy, "", "203.0.113.7, 6.6.6.6"},
		{"x-real-ip empty", HeaderXRealIP, proxy,
			[]string{"X-Real-IP:"}, proxy, proxy, "", "(empty)"},
		{"x-real-ip unknown", HeaderXRealIP, proxy,
			[]string{"X-Real-IP: unknown"}, proxy, proxy, "", "unknown"},

		// Bounds.
		{"64 entries examined", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 203.0.113.7, " + xff("10.0.0.1", 63)},
			"203.0.113.7", "203.0.113.7, " + xff("10.0.0.1", 63) + ", 10.0.0.2", "10.0.0.1", ""},
		{"client beyond 64 entries", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: 203.0.113.7, " + xff("10.0.0.1", 64)},
			proxy, proxy, "", "(chain too long)"},
		{"client beyond 64 entries, many lines", HeaderXFF, proxy,
			append([]string{"X-Forwarded-For: 203.0.113.7"},
				strings.Split(strings.Repeat("X-Forwarded-For: 10.0.0.1\n", 64), "\n")[:64]...),
			proxy, proxy, "", "(chain too long)"},
		{"many entries left of client", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: " + xff("x", 1000) + ", 203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"long line left of client", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: " + strings.Repeat("x", 10000), "X-Forwarded-For: 203.0.113.7"},
			"203.0.113.7", "203.0.113.7, 10.0.0.2", proxy, ""},
		{"last line too long", HeaderXFF, proxy,
			[]string{"X-Forwarded-For: " + strings.Repeat("x", 10000) + ", 203.0.113.7"},
			proxy, proxy, "", "(chain too long)"},
		{"trusted lines beyond the byte bound", HeaderXFF, proxy,
			[]string{
				"X-Forwarded-For: 203.0.113.7",
				"X-Forwarded-For: " + strings.Repeat(",", 5000) + "10.0.0.1",
				"X-Forwarded-For: " + strings.Repeat(",", 5000) + "10.0.0.1",
			},
			proxy, proxy, "", "(chain too long)"},
	}
	resolvers := map[Header]*Resolver{}
	for _, h := range []Header{HeaderXFF, HeaderForwarded, HeaderXRealIP} {
		resolvers[h] = newTestResolver(t, h)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := resolvers[tt.header].Resolve(netip.MustParseAddr(tt.peer), fields(tt.lines...))
			var via netip.Addr
			if tt.via != "" {
				via = netip.MustParseAddr(tt.via)
			}
			want := Result{netip.MustParseAddr(tt.addr), tt.chain, via, tt.unusable}
			if got != want {
				t.Errorf("Resolve(%s, %q)\n got %+v\nwant %+v", tt.peer, tt.lines, got, want)
			}
			checkReference(t, tt.header, netip.MustParseAddr(tt.peer), tt.lines, want)
		})
	}
}

// checkReference checks that the fuzz targets' reference implementation
// agrees with a table case, where it applies: every line is the header's.
func checkReference(t *testing.T, h Header, peer netip.Addr, lines []string, want Result) {
	t.Helper()
	split := referenceXFF
	switch h {
	case HeaderXFF:
	case HeaderForwarded:
		split = referenceForwarded
	default:
		return
	}
	values := make([]string, len(lines))
	for i, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		if !strings.EqualFold(name, h.field()) {
			return
		}
		values[i] = strings.Trim(value, " \t")
	}
	if got := referenceResolve(newTestResolver(t, h), peer, values, split); got != want {
		t.Errorf("reference: got %+v\nwant %+v", got, want)
	}
}

func TestResolveEdges(t *testing.T) {
	t.Parallel()
	fs := fields("X-Forwarded-For: 203.0.113.7")
	peer := netip.MustParseAddr("10.0.0.2")

	if got := newTestResolver(t, HeaderXFF).Resolve(netip.Addr{}, fs); got != (Result{}) {
		t.Errorf("invalid peer: got %+v, want the zero Result", got)
	}

	var nilResolver *Resolver
	if got := nilResolver.Resolve(peer, fs); got != (Result{Addr: peer, Chain: "10.0.0.2"}) {
		t.Errorf("nil Resolver: got %+v, want the peer", got)
	}

	trusted, _ := ParseCIDRs(testTrusted)
	if got := NewResolver(trusted, Header(9)).Resolve(peer, fs); got.Addr != peer {
		t.Errorf("unknown header: got %+v, want the peer", got)
	}

	// The caller's prefixes are copied, not kept.
	r := NewResolver(trusted, HeaderXFF)
	trusted[0] = netip.MustParsePrefix("192.0.2.0/24")
	if !r.Trusted(peer) {
		t.Error("NewResolver kept the caller's slice")
	}
}

func TestTrusted(t *testing.T) {
	t.Parallel()
	r := NewResolver([]netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/8"), // host bits are masked off
		netip.MustParsePrefix("::ffff:192.0.2.0/120"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("::/0"), // never matches IPv4
		{},
	}, HeaderXFF)
	tests := []struct {
		addr string
		want bool
	}{
		{"10.200.0.1", true},
		{"::ffff:10.200.0.1", true},
		{"11.0.0.1", false},
		{"192.0.2.77", true},
		{"::ffff:192.0.2.77", true},
		{"192.0.3.1", false},
		{"2001:db8::1", true},
		{"2001:db8::1%eth0", true},
		{"2001:db9::1", true}, // by ::/0
		{"203.0.113.7", false},
	}
	for _, tt := range tests {
		if got := r.Trusted(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Trusted(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if r.Trusted(netip.Addr{}) {
		t.Error("the zero Addr is trusted")
	}
	if NewResolver(nil, HeaderXFF).Trusted(netip.MustParseAddr("10.0.0.1")) {
		t.Error("an empty Resolver trusts something")
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "(empty)"},
		{"unknown", "unknown"},
		{"a\x00b\x7fc\xffd", "a?b?c?d"},
		{strings.Repeat("y", 64), strings.Repeat("y", 64)},
		{strings.Repeat("y", 65), strings.Repeat("y", 61) + "..."},
	}
	for _, tt := range tests {
		if got := sanitize([]byte(tt.in)); got != tt.want {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
