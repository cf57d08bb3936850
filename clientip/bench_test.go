package clientip

import (
	"net/netip"
	"testing"
)

// benchmarkResolve measures one Resolve from peer with the given lines.
func benchmarkResolve(b *testing.B, h Header, peer string, lines ...string) {
	r := newTestResolver(b, h)
	p := netip.MustParseAddr(peer)
	fs := fields(append([]string{"Host: example.com", "Upgrade: websocket"}, lines...)...)
	b.ReportAllocs()
	for b.Loop() {
		if res := r.Resolve(p, fs); !res.Addr.IsValid() || res.Unusable != "" {
			b.Fatal(res)
		}
	}
}

// BenchmarkResolveXFF measures the common case behind two proxies: three
// entries, the client's then two trusted ones. The one allocation is the
// Chain string.
func BenchmarkResolveXFF(b *testing.B) {
	benchmarkResolve(b, HeaderXFF, "10.0.0.3",
		"X-Forwarded-For: 203.0.113.7, 10.0.0.1, 10.0.0.2")
}

// BenchmarkResolveXFFSpoofed measures a client that prepends 60 entries.
func BenchmarkResolveXFFSpoofed(b *testing.B) {
	benchmarkResolve(b, HeaderXFF, "10.0.0.3",
		"X-Forwarded-For: "+xff("6.6.6.6", 60), "X-Forwarded-For: 203.0.113.7, 10.0.0.2")
}

func BenchmarkResolveForwarded(b *testing.B) {
	benchmarkResolve(b, HeaderForwarded, "10.0.0.3",
		`Forwarded: for=203.0.113.7;proto=https, for="[2001:db8:a::1]:4711", for=10.0.0.2`)
}

func BenchmarkResolveXRealIP(b *testing.B) {
	benchmarkResolve(b, HeaderXRealIP, "10.0.0.2", "X-Real-IP: 203.0.113.7")
}

// BenchmarkResolveUntrusted measures a direct client: no header is read.
func BenchmarkResolveUntrusted(b *testing.B) {
	benchmarkResolve(b, HeaderXFF, "198.51.100.9", "X-Forwarded-For: 203.0.113.7")
}
