package flood

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestCheckTarget(t *testing.T) {
	t.Parallel()
	testNet := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	tests := []struct {
		name   string
		target string
		allow  []netip.Prefix
		want   string // the address to dial, or "" for a refusal
	}{
		{"IPv4 loopback", "ws://127.0.0.1:8080/ws", nil, "127.0.0.1:8080"},
		{"anywhere in 127/8", "ws://127.1.2.3/ws", nil, "127.1.2.3:80"},
		{"IPv6 loopback", "ws://[::1]:9000/", nil, "[::1]:9000"},
		{"localhost", "ws://localhost:8080/ws", nil, "127.0.0.1:8080"},
		{"http is ws", "http://127.0.0.1:1/", nil, "127.0.0.1:1"},
		{"elsewhere", "ws://192.0.2.7/ws", nil, ""},
		{"elsewhere, allowed", "ws://192.0.2.7/ws", testNet, "192.0.2.7:80"},
		{"outside the allowed range", "ws://198.51.100.1/ws", testNet, ""},
		{"IPv4-mapped loopback", "ws://[::ffff:127.0.0.1]:1/", nil, "127.0.0.1:1"},
		{"IPv4-mapped elsewhere", "ws://[::ffff:192.0.2.7]:1/", nil, ""},
		{"TLS", "wss://127.0.0.1/ws", nil, ""},
		{"not a websocket URL", "ftp://127.0.0.1/", nil, ""},
		{"no host", "ws:///ws", nil, ""},
		{"bad port", "ws://127.0.0.1:99999/", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := CheckTarget(context.Background(), tt.target, tt.allow)
			if tt.want == "" {
				if err == nil || !errors.Is(err, ErrConfig) {
					t.Fatalf("got %v, %v; want a refusal wrapping ErrConfig", got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// recordingDialer fails every dial and remembers where it was asked to go.
type recordingDialer struct {
	mu    sync.Mutex // guards dials
	dials []netip.AddrPort
}

func (d *recordingDialer) dial(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dials = append(d.dials, dst)
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("test dialer")}
}

func (d *recordingDialer) calls() []netip.AddrPort {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]netip.AddrPort(nil), d.dials...)
}

func TestRunRefusesTargetBeforeDialing(t *testing.T) {
	t.Parallel()
	d := &recordingDialer{}
	cfg := Config{
		Target:      "ws://192.0.2.7:8080/ws",
		Connections: 3,
		Duration:    200 * time.Millisecond,
		Probe:       ProbeConfig{Interval: 10 * time.Millisecond},
		dial:        d.dial,
	}
	res, err := Run(context.Background(), cfg, nil)
	var te *TargetError
	if !errors.As(err, &te) || res != nil {
		t.Fatalf("Run: %v, %v; want a *TargetError", res, err)
	}
	if te.Addr.String() != "192.0.2.7" {
		t.Errorf("refused address %v", te.Addr)
	}
	if calls := d.calls(); len(calls) != 0 {
		t.Fatalf("dialed %v before refusing", calls)
	}

	// A loopback target with a probe elsewhere is refused too.
	cfg.Target, cfg.Probe.Target = "ws://127.0.0.1:1/ws", "ws://192.0.2.8/ws"
	if _, err := Run(context.Background(), cfg, nil); !errors.As(err, &te) {
		t.Fatalf("probe elsewhere: %v, want a *TargetError", err)
	}
	if calls := d.calls(); len(calls) != 0 {
		t.Fatalf("dialed %v before refusing", calls)
	}

	// Allowed explicitly, the run goes ahead and dials the target.
	cfg.Target, cfg.Probe = "ws://192.0.2.7:8080/ws", ProbeConfig{}
	cfg.AllowTargets = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/28")}
	res, err = Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("allowed target: %v", err)
	}
	calls := d.calls()
	if len(calls) != 3 || calls[0].String() != "192.0.2.7:8080" {
		t.Errorf("dialed %v, want 192.0.2.7:8080 three times", calls)
	}
	if sum(res.Failed) != 3 {
		t.Errorf("failed %v, want the three failed dials", res.Failed)
	}
}
