package relay

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/config"
)

// TestFairAdmissionRetriesAStolenSlot plays the race `wsguard lab` found:
// the slot an eviction frees is taken by another handshake (an attacker
// still opening connections) before the newcomer's retry. The newcomer
// then evicts again, and is admitted.
func TestFairAdmissionRetriesAStolenSlot(t *testing.T) {
	t.Parallel()
	const maxConns, floodAddrs = 10, 5
	backend := echoBackend(t, nil)
	cfg := testConfig(t, upstreamOf(backend), func(c *config.Config) {
		c.Limits.MaxConnections = maxConns
		c.Limits.InstanceMaxConnections = maxConns
		c.Limits.PerIP = 0
		c.Limits.HandshakeRate = 0
		c.Limits.Pressure = 0.9
		c.Limits.EvictionGrace = 0
	})
	reg := prometheus.NewRegistry()
	g := startGuardWith(t, cfg, Options{Registerer: reg})
	for i := range maxConns {
		src := fmt.Sprintf("127.0.0.%d", 2+i%floodAddrs)
		if c, resp := dialRaw(t, g.Addr, src, "/"); c == nil {
			t.Fatalf("flood connection %d from %s refused with %d", i, src, resp.StatusCode)
		}
	}

	// After the first eviction, an attacker's handshake takes the slot.
	var steal sync.Once
	hook := func() {
		steal.Do(func() {
			_, ref, err := g.adm.Acquire(context.Background(),
				admission.Request{Addr: netip.MustParseAddr("127.0.0.2")})
			if err != nil || ref != nil {
				t.Errorf("the attacker could not take the freed slot: %v %v", err, ref)
			}
		})
	}
	g.afterEvict.Store(&hook)

	c, resp := dialRaw(t, g.Addr, "127.0.0.100", "/")
	if c == nil {
		t.Fatalf("the newcomer got %d, want an upgrade after a second eviction", resp.StatusCode)
	}
	if n := metricValue(t, reg, "wsguard_evictions_total", "pressure"); n != 2 {
		t.Errorf("%v evictions, want 2: one whose slot was stolen, one for the newcomer", n)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %d", resp.StatusCode)
	}
}
