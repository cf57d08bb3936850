package clientip

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseNode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" when not an address
	}{
		{"192.0.2.7", "192.0.2.7"},
		{"0.0.0.0", "0.0.0.0"},
		{"255.255.255.255", "255.255.255.255"},
		{"192.0.2.7:0", "192.0.2.7"},
		{"192.0.2.7:65535", "192.0.2.7"},
		{"192.0.2.7:_obf-1.x", "192.0.2.7"},
		{"2001:db8::1", "2001:db8::1"},
		{"::", "::"},
		{"::1", "::1"},
		{"1::", "1::"},
		{"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
		{"1:2:3:4:5:6::8", "1:2:3:4:5:6:0:8"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"::192.0.2.7", "::c000:207"},
		{"1:2:3:4:5:6:192.0.2.7", "1:2:3:4:5:6:c000:207"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[::ffff:192.0.2.7]:443", "192.0.2.7"},
		{"fe80::1%eth0", "fe80::1"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"2001:DB8::ABCD", "2001:db8::abcd"},

		{"", ""},
		{"unknown", ""},
		{"_hidden", ""},
		{"192.0.2", ""},
		{"192.0.2.7.1", ""},
		{"192.0.2.256", ""},
		{"192.0.2.07", ""},
		{"192.0.2.7:", ""},
		{"192.0.2.7:65536", ""},
		{"192.0.2.7:123456", ""},
		{"192.0.2.7:_", ""},
		{"192.0.2.7:_a b", ""},
		{" 192.0.2.7", ""},
		{"192.0.2.7%eth0", ""},
		{"[192.0.2.7]", ""},
		{"[192.0.2.7]:80", ""},
		{"[2001:db8::1", ""},
		{"[2001:db8::1]80", ""},
		{"[2001:db8::1]:", ""},
		{"2001:db8::1:80:", ""},
		{"1:2:3:4:5:6:7:8:9", ""},
		{"1:2:3:4:5:6:7::8", ""},
		{"1:2:3:4:5:6:7:8::", ""},
		{"1::2::3", ""},
		{":::", ""},
		{":1::", ""},
		{"12345::", ""},
		{"g::", ""},
		{"fe80::1%", ""},
		{"1:2:3:4:5:192.0.2.7", ""},
		{"1:2:3:4:5:6:7:192.0.2.7", ""},
		{"::192.0.2.7:1", ""},
		{"[" + "0000:0000:0000:0000:0000:0000:0000:0001%" + strings.Repeat("z", 30) + "]", ""}, // too long
	}
	for _, tt := range tests {
		got, ok := parseNode([]byte(tt.in))
		switch {
		case tt.want == "" && ok:
			t.Errorf("parseNode(%q) = %s, want not an address", tt.in, got)
		case tt.want != "" && (!ok || got != netip.MustParseAddr(tt.want)):
			t.Errorf("parseNode(%q) = %s, %v, want %s", tt.in, got, ok, tt.want)
		}
	}
}

// FuzzParseAddr checks the allocation-free parser against netip.ParseAddr.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"192.0.2.7", "2001:db8::1", "::", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4",
		"fe80::1%eth0", "1::2::3", "01.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:7::",
		"ffff::ffff:ffff:1.2.3.4", "%", "1.2.3.4%x", "::%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseAddr([]byte(s))
		want, err := netip.ParseAddr(s)
		if ok != (err == nil) {
			t.Fatalf("parseAddr(%q) ok = %v, netip says %v", s, ok, err)
		}
		if want = want.Unmap().WithZone(""); ok && got != want {
			t.Fatalf("parseAddr(%q) = %s, netip says %s", s, got, want)
		}
	})
}

func BenchmarkParseNode(b *testing.B) {
	for _, s := range []string{"203.0.113.7", "[2001:db8:beef::7]:443"} {
		in := []byte(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := parseNode(in); !ok {
					b.Fatal("not parsed")
				}
			}
		})
	}
}
