package store

import (
	"context"
	"fmt"
	"time"
)

// Acquire implements Store. With Redis up it takes one round trip per
// hash slot the shared counters fall in: one for most handshakes (see
// keyName). After an error or a timeout the handshake is decided by the
// failure mode, so Acquire waits on Redis at most RedisOptions.Timeout;
// a few failures in a row switch the store to the failure mode, and it
// stops asking Redis until the maintenance loop brings it back. Only
// FailClosed returns an error.
func (r *Redis) Acquire(ctx context.Context, claims []Claim) (int, error) {
	if r.ready() {
		full, err := r.acquireShared(ctx, claims)
		if err == nil {
			return full, nil
		}
		r.fail("acquire", err)
	}
	return r.acquireLocal(claims)
}

// Release implements Store. It gives the slots back in Redis at once; if
// that fails, the keys are re-synced with absolute counts once Redis
// answers, and if this instance dies first, they end with its lease. It
// never returns an error.
func (r *Redis) Release(ctx context.Context, keys []Key) error {
	if !r.ready() {
		r.held.Release(ctx, keys)
		r.markDirty(keys)
		return nil
	}
	e0 := r.epoch.Load()
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, max(r.timeout, 500*time.Millisecond))
	err := r.releaseRemote(rctx, keys)
	cancel()
	r.held.Release(ctx, keys)
	if err != nil {
		r.markDirty(keys)
		r.fail("release", err)
		return nil
	}
	r.succeed("release", start)
	r.settle(e0, keys)
	return nil
}

// acquireShared decides with Redis. Every claim is counted in held before
// Redis is asked, so that a re-sync running meanwhile errs on the high
// side; the count is taken back if the answer is no.
func (r *Redis) acquireShared(ctx context.Context, claims []Claim) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	start := time.Now()

	var buf [8]Claim
	local, full, err := r.localClaims(ctx, claims, buf[:0])
	if err != nil || full >= 0 {
		return full, err
	}
	e0 := r.epoch.Load()
	if full, _ := r.held.Acquire(ctx, local); full >= 0 {
		return full, nil
	}
	full, err = r.acquireRemote(ctx, claims)
	if err != nil || full >= 0 {
		r.unhold(claims)
	}
	var kbuf [8]Key
	keys := claimKeys(claims, kbuf[:0])
	if err != nil {
		r.markDirty(keys)
		return -1, err
	}
	r.succeed("acquire", start)
	r.settle(e0, keys)
	return full, nil
}

// localClaims returns the claims as held decides them: instance limits
// as they are; in the cluster layout, fleet-wide limits less the other
// instances' latest totals; every other claim without a limit (Redis
// decides it). A fleet-wide counter already full gives its index.
func (r *Redis) localClaims(ctx context.Context, claims []Claim, out []Claim) ([]Claim, int, error) {
	for i, c := range claims {
		switch {
		case c.Key.Scope == ScopeInstance:
		case r.cluster && fleetWide(c.Key.Scope) && c.Limit > 0:
			others, err := r.othersOf(ctx, c.Key)
			if err != nil {
				return nil, -1, err
			}
			if c.Limit -= others; c.Limit <= 0 {
				return nil, i, nil
			}
		default:
			c.Limit = 0
		}
		out = append(out, c)
	}
	return out, -1, nil
}

// acquireLocal decides as the failure mode says, on this instance's own
// counts. The keys are marked for re-sync: Redis must learn of them.
func (r *Redis) acquireLocal(claims []Claim) (int, error) {
	if r.mode == FailClosed {
		return -1, fmt.Errorf("deciding without redis: %w", ErrUnavailable)
	}
	var buf [8]Claim
	local := buf[:0]
	for _, c := range claims {
		switch {
		case c.Key.Scope == ScopeInstance:
		case r.mode == FailOpen:
			c.Limit = 0
		case c.Limit > 0:
			c.Limit = (c.Limit + r.fleet - 1) / r.fleet
		}
		local = append(local, c)
	}
	full, err := r.held.Acquire(context.Background(), local)
	if full < 0 {
		var kbuf [8]Key
		r.markDirty(claimKeys(claims, kbuf[:0]))
	}
	return full, err
}

// acquireRemote runs the acquire script once per group of shared claims
// in one hash slot. If a later group is full, the earlier ones are given
// back. It returns the index in claims of the first full claim, or -1.
func (r *Redis) acquireRemote(ctx context.Context, claims []Claim) (int, error) {
	groups := r.group(claimKeys(claims, nil))
	id := r.ID()
	dead := *r.dead.Load()
	for g, grp := range groups {
		args := make([]any, 0, 3+len(dead)+len(grp.idx))
		args = append(args, id, r.keyTTL().Milliseconds(), len(dead))
		args = append(args, dead...)
		for _, i := range grp.idx {
			args = append(args, claims[i].Limit)
		}
		res, err := acquireScript.Run(ctx, r.client, grp.names, args...).Int64()
		if err != nil {
			return -1, fmt.Errorf("running acquire script: %w", err)
		}
		if res >= 0 {
			if err := r.releaseGroups(ctx, groups[:g], id); err != nil {
				return -1, err
			}
			return grp.idx[res], nil
		}
	}
	return -1, nil
}

// releaseRemote runs the release script once per group of shared keys.
func (r *Redis) releaseRemote(ctx context.Context, keys []Key) error {
	return r.releaseGroups(ctx, r.group(keys), r.ID())
}

func (r *Redis) releaseGroups(ctx context.Context, groups []group, id string) error {
	for _, grp := range groups {
		if err := releaseScript.Run(ctx, r.client, grp.names, id).Err(); err != nil {
			return fmt.Errorf("running release script: %w", err)
		}
	}
	return nil
}

// group is the shared keys of one decision that live in one hash slot.
type group struct {
	names []string // key names in Redis
	idx   []int    // their indexes in the caller's list
}

// group sorts the keys Redis decides into groups that one script may
// touch: all of them in the single-server layout; one group per hash tag
// in the cluster layout, where fleet-wide keys are not sent at all.
func (r *Redis) group(keys []Key) []group {
	var groups []group
	var tags []string
	for i, k := range keys {
		if !r.shared(k) {
			continue
		}
		name := keyName(r.prefix, k)
		g := 0
		if r.cluster {
			tag := hashTag(name)
			for g = 0; g < len(tags) && tags[g] != tag; g++ {
			}
			if g == len(tags) {
				tags = append(tags, tag)
			}
		}
		if g == len(groups) {
			groups = append(groups, group{})
		}
		groups[g].names = append(groups[g].names, name)
		groups[g].idx = append(groups[g].idx, i)
	}
	return groups
}

// shared reports whether k's count goes through the scripts (rather than
// staying local, or being published every tick in the cluster layout).
func (r *Redis) shared(k Key) bool {
	return k.Scope != ScopeInstance && !(r.cluster && fleetWide(k.Scope))
}

// unhold takes back what held counted for claims.
func (r *Redis) unhold(claims []Claim) {
	var kbuf [8]Key
	r.held.Release(context.Background(), claimKeys(claims, kbuf[:0]))
}

// settle marks keys for re-sync if a re-sync overlapped the operation
// that began at epoch e0: its snapshot may have missed the operation.
func (r *Redis) settle(e0 uint64, keys []Key) {
	if e1 := r.epoch.Load(); e1 != e0 || e0&1 == 1 {
		r.markDirty(keys)
	}
}

// markDirty remembers keys whose count in Redis may be wrong, for the
// next re-sync. Past maxDirty keys it stops remembering and flags an
// overflow, which makes the next re-sync start a new generation.
func (r *Redis) markDirty(keys []Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if !r.shared(k) {
			continue
		}
		if len(r.dirty) >= maxDirty {
			r.overflow = true
			return
		}
		r.dirty[k] = struct{}{}
	}
}

// keyTTL is how long a counter outlives its last write: long enough that
// periodic re-syncs keep a held counter, short enough that a dead
// instance's fields go with the key before its id is forgotten.
func (r *Redis) keyTTL() time.Duration { return 3 * r.ttl }

func claimKeys(claims []Claim, out []Key) []Key {
	for _, c := range claims {
		out = append(out, c.Key)
	}
	return out
}
