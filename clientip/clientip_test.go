package clientip

import (
	"net/netip"
	"testing"
)

func TestPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		addr string
		v4   int
		v6   int
		want string
	}{
		{"ipv4 host", "192.0.2.7", 32, 64, "192.0.2.7/32"},
		{"ipv4 /24", "192.0.2.7", 24, 64, "192.0.2.0/24"},
		{"ipv6 /64", "2001:db8:1:2:3:4:5:6", 32, 64, "2001:db8:1:2::/64"},
		{"ipv6 /56", "2001:db8:1:2ff:3:4:5:6", 32, 56, "2001:db8:1:200::/56"},
		{"mapped ipv4 counts as ipv4", "::ffff:192.0.2.7", 24, 64, "192.0.2.0/24"},
		{"zone dropped", "fe80::1%eth0", 32, 64, "fe80::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Prefix(netip.MustParseAddr(tt.addr), tt.v4, tt.v6)
			if got.String() != tt.want {
				t.Fatalf("Prefix(%s) = %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
	if p := Prefix(netip.Addr{}, 32, 64); p.IsValid() {
		t.Fatalf("invalid address gave %s", p)
	}
}
