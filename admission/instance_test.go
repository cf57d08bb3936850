package admission

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/wsguard/wsguard/store"
)

// TestAcquireInstanceLimit checks the per-process limit: its own claim,
// its own refusal, and its slot given back by Release.
func TestAcquireInstanceLimit(t *testing.T) {
	t.Parallel()
	a, mem, _ := newTestAdmitter(Policy{MaxConnections: 10, InstanceMaxConnections: 1, PerIP: 5,
		IPv4Prefix: 32, IPv6Prefix: 64}, 16)
	ctx := context.Background()
	req := Request{Addr: netip.MustParseAddr("192.0.2.1")}
	l, ref, err := a.Acquire(ctx, req)
	if err != nil || ref != nil {
		t.Fatalf("first Acquire: %v, %v", ref, err)
	}
	_, ref, err = a.Acquire(ctx, Request{Addr: netip.MustParseAddr("192.0.2.2")})
	if err != nil || ref == nil || ref.Limit != "instance_max_connections" || ref.Status != http.StatusServiceUnavailable {
		t.Fatalf("second Acquire: %+v, %v; want a 503 instance_max_connections refusal", ref, err)
	}
	inst := store.Key{Scope: store.ScopeInstance}
	if n, _ := mem.Count(ctx, inst); n != 1 {
		t.Fatalf("instance count %d, want 1", n)
	}
	if err := a.Release(ctx, l); err != nil {
		t.Fatal(err)
	}
	if n := mem.Len(); n != 0 {
		t.Fatalf("%d counters left after Release, want 0", n)
	}
}
