package store

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// TestRedisFailureModes takes Redis away under a running instance and
// brings it back, in each failure mode: decisions during the outage
// follow the mode, the first one comes at once, and afterwards Redis's
// counts equal the slots the instance holds, including those taken and
// given back during the outage.
func TestRedisFailureModes(t *testing.T) {
	t.Parallel()
	ip := ipKey("192.0.2.5/32")
	inst := Key{Scope: ScopeInstance}
	claims := []Claim{claim(inst, 3), claim(globalKey, 100), claim(ip, 4)}
	tests := []struct {
		mode FailureMode
		// admitted during the outage, on top of the one held before,
		// and the claim that refuses next (-1: ErrUnavailable)
		admitted, refusedBy int
	}{
		{FailLocal, 1, 2}, // per_ip 4 over a fleet of 2: 2 here
		{FailOpen, 2, 0},  // only the instance limit, 3
		{FailClosed, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			t.Parallel()
			srv := testsupport.StartRedis(t)
			proxy := testsupport.StartTCPProxy(t, srv.Addr)
			obs := &fakeObserver{}
			r := newTestRedis(t, proxy.Addr, func(o *RedisOptions) {
				o.OnFailure, o.FleetSize, o.Observer = tt.mode, 2, obs
			})
			mustAcquire(t, r, claims...)

			proxy.Down()
			start := time.Now()
			for range tt.admitted {
				mustAcquire(t, r, claims...)
			}
			full, err := r.Acquire(context.Background(), claims)
			if d := time.Since(start); d > time.Second {
				t.Errorf("the first decisions without Redis took %v", d)
			}
			switch {
			case tt.refusedBy < 0 && !errors.Is(err, ErrUnavailable):
				t.Fatalf("Acquire = %d, %v; want ErrUnavailable", full, err)
			case tt.refusedBy >= 0 && (err != nil || full != tt.refusedBy):
				t.Fatalf("Acquire = %d, %v; want refused by claim %d", full, err, tt.refusedBy)
			}
			waitUntil(t, "the store to go down", 10*time.Second, func() bool { return !r.Up() })
			if got, want := r.Ready() != "", tt.mode == FailClosed; got != want {
				t.Errorf("not ready = %v while down, want %v", got, want)
			}
			release(t, r, claimKeys(claims, nil)...) // one closes during the outage

			if err := proxy.Up(srv.Addr); err != nil {
				t.Fatal(err)
			}
			held := tt.admitted
			c := rawRedis(t, srv.Addr)
			waitUntil(t, "Redis's counts to match", 10*time.Second, func() bool {
				return r.Up() && fieldSum(t, c, ip) == held && fieldSum(t, c, globalKey) == held
			})
			if r.Ready() != "" {
				t.Errorf("not ready after recovery: %s", r.Ready())
			}
			if obs.downs() == 0 || obs.errors() == 0 {
				t.Errorf("observer saw %d downs and %d errors", obs.downs(), obs.errors())
			}
		})
	}
}

// TestRedisRestartedEmpty replaces Redis with an empty one: the counts
// of every instance come back, and limits hold across the change.
func TestRedisRestartedEmpty(t *testing.T) {
	t.Parallel()
	first := testsupport.StartRedis(t)
	proxy := testsupport.StartTCPProxy(t, first.Addr)
	a := newTestRedis(t, proxy.Addr, nil)
	b := newTestRedis(t, proxy.Addr, nil)
	ip := ipKey("192.0.2.44/32")
	mustAcquire(t, a, claim(ip, 3))
	mustAcquire(t, a, claim(ip, 3))
	mustAcquire(t, b, claim(ip, 3))

	proxy.Down()
	if err := first.Stop(); err != nil {
		t.Logf("stopping the first redis-server: %v", err)
	}
	second := testsupport.StartRedis(t)
	if err := proxy.Up(second.Addr); err != nil {
		t.Fatal(err)
	}
	c := rawRedis(t, second.Addr)
	waitUntil(t, "counts rebuilt in the new Redis", 10*time.Second, func() bool {
		return a.Up() && b.Up() && fieldSum(t, c, ip) == 3
	})
	wantFull(t, b, 0, claim(ip, 3))
}

// TestRedisSlow pauses Redis: a handshake waits no longer than the
// timeout, and the store recovers when Redis resumes.
func TestRedisSlow(t *testing.T) {
	t.Parallel()
	srv := testsupport.StartRedis(t)
	const timeout = 100 * time.Millisecond
	r := newTestRedis(t, srv.Addr, func(o *RedisOptions) { o.Timeout = timeout })
	ip := ipKey("192.0.2.66/32")
	mustAcquire(t, r, claim(ip, 5))

	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			srv.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	for i := range 3 {
		start := time.Now()
		mustAcquire(t, r, claim(ip, 5))
		// Each waits for the timeout at most (and a loaded machine);
		// after a few the store stops asking Redis.
		if d := time.Since(start); d > timeout+500*time.Millisecond {
			t.Errorf("decision %d took %v with Redis paused", i, d)
		}
	}
	waitUntil(t, "the store to go down", 10*time.Second, func() bool { return !r.Up() })
	start := time.Now()
	mustAcquire(t, r, claim(ip, 5))
	if d := time.Since(start); d > timeout/2 {
		t.Errorf("a decision took %v with the store down", d)
	}
	resume()
	c := rawRedis(t, srv.Addr)
	waitUntil(t, "recovery", 10*time.Second, func() bool { return r.Up() && fieldSum(t, c, ip) == 5 })
}

// fakeObserver counts what a Redis store reports.
type fakeObserver struct {
	mu          sync.Mutex // guards the counts
	down, fails int
}

func (o *fakeObserver) StoreUp(up bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !up {
		o.down++
	}
}

func (o *fakeObserver) StoreError(string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fails++
}

func (o *fakeObserver) StoreLatency(string, time.Duration) {}

func (o *fakeObserver) downs() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}

func (o *fakeObserver) errors() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fails
}
