package admission

import (
	"context"
	"net/netip"
	"testing"
)

func TestAcquireIdentityLimits(t *testing.T) {
	t.Parallel()
	base := Policy{MaxConnections: 10, IPv4Prefix: 32, IPv6Prefix: 64, PerUser: 2, AnonymousShare: 0.3}
	v4 := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, last}) }
	v6 := func(last byte) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x42, 15: last})
	}
	tests := []struct {
		name   string
		policy func(p *Policy)
		reqs   []Request // all but the last are admitted
		limit  string    // the last is refused with this limit
		status int
	}{
		{"per user", nil, []Request{
			{Addr: v4(1), User: "ann"}, {Addr: v4(2), User: "ann"}, {Addr: v4(3), User: "ann"},
		}, "per_user", 429},
		{"users apart", nil, []Request{
			{Addr: v4(1), User: "ann"}, {Addr: v4(1), User: "ann"}, {Addr: v4(1), User: "bob"},
			{Addr: v4(1), User: "bob"}, {Addr: v4(1), User: "bob"},
		}, "per_user", 429},
		{"anonymous share", nil, []Request{
			{Addr: v4(1), Anonymous: true}, {Addr: v4(2), Anonymous: true}, {Addr: v4(3), Anonymous: true},
			{Addr: v4(4), User: "ann"}, {Addr: v4(5), Anonymous: true},
		}, "anonymous_share", 503},
		{"no share when auth is off", nil, []Request{
			{Addr: v4(1)}, {Addr: v4(2)}, {Addr: v4(3)}, {Addr: v4(4)}, {Addr: v4(5)},
			{Addr: v4(6)}, {Addr: v4(7)}, {Addr: v4(8)}, {Addr: v4(9)}, {Addr: v4(10)}, {Addr: v4(11)},
		}, "max_connections", 503},
		{"zero share", func(p *Policy) { p.AnonymousShare = 0 }, []Request{
			{Addr: v4(1), User: "ann"}, {Addr: v4(2), Anonymous: true},
		}, "anonymous_share", 503},
		{"ipv4 /24 tier", func(p *Policy) { p.Tiers = []Tier{{IPv4Prefix: 24, Limit: 2}} }, []Request{
			{Addr: v4(1)}, {Addr: v4(2)}, {Addr: v4(3)},
		}, "prefix_tiers", 429},
		{"ipv6 /56 tier", func(p *Policy) { p.Tiers = []Tier{{IPv6Prefix: 56, Limit: 2}} }, []Request{
			{Addr: v6(1)}, {Addr: v6(2)}, {Addr: v4(1)}, {Addr: v4(2)},
			{Addr: netip.MustParseAddr("2001:db8:0:ff::1")},
		}, "prefix_tiers", 429},
		{"ipv6 /64 aggregation", func(p *Policy) { p.PerIP = 2 }, []Request{
			{Addr: v6(1)}, {Addr: v6(2)}, {Addr: v6(3)},
		}, "per_ip", 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := base
			if tt.policy != nil {
				tt.policy(&p)
			}
			a, mem, _ := newTestAdmitter(p, 16)
			ctx := context.Background()
			var leases []Lease
			for i, req := range tt.reqs {
				l, ref, err := a.Acquire(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				last := i == len(tt.reqs)-1
				switch {
				case !last && ref != nil:
					t.Fatalf("request %d refused: %v", i, ref)
				case last && (ref == nil || ref.Limit != tt.limit || ref.Status != tt.status):
					t.Fatalf("last request: refusal %+v, want %s %d", ref, tt.limit, tt.status)
				}
				leases = append(leases, l)
			}
			for _, l := range leases {
				if err := a.Release(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
			if n := mem.Len(); n != 0 {
				t.Fatalf("%d counters left after releasing every lease", n)
			}
		})
	}
}
