package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The maintenance loop. Every tick it renews the lease (learning which
// instances are dead), writes back counts that may be wrong in Redis,
// and, in the cluster layout, publishes this instance's fleet-wide
// counts and reads the others' totals. After a failure it writes every
// count it holds before deciding with Redis again, so Redis's counts
// match the open connections, including those opened and closed while it
// was away.

// run is the maintenance loop; it returns when ctx ends.
func (r *Redis) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mctx, cancel := context.WithTimeout(ctx, r.syncTimeout())
		r.maintain(mctx)
		cancel()
	}
}

// syncTimeout bounds one round of maintenance.
func (r *Redis) syncTimeout() time.Duration {
	return max(2*time.Second, 10*r.timeout, r.tick)
}

// maintain runs one round: renew, re-sync, and come up if it all worked.
func (r *Redis) maintain(ctx context.Context) {
	synced, err := r.maintainOnce(ctx)
	if err != nil {
		if ctx.Err() != nil && r.closed.Load() {
			return
		}
		r.fail("sync", err)
		return
	}
	r.markUp(synced)
}

func (r *Redis) maintainOnce(ctx context.Context) (int, error) {
	live, err := r.renew(ctx)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	overflow := r.overflow
	r.mu.Unlock()
	if !live || overflow {
		if err := r.newGeneration(ctx, live); err != nil {
			return 0, err
		}
	}
	full := r.full.Load() || time.Duration(r.since())-r.lastFull >= r.ttl
	if full {
		if err := loadScripts(ctx, r.client); err != nil {
			return 0, err
		}
	}
	return r.resync(ctx, full)
}

// renew extends the lease and refreshes the dead list. It reports false
// when the lease had ended or was gone, so this instance's counts may
// have been dropped by the others.
func (r *Redis) renew(ctx context.Context) (bool, error) {
	mode := "renew"
	if !r.registered {
		mode = "register"
	}
	live, err := r.leaseOp(ctx, r.ID(), mode)
	if err != nil {
		return false, err
	}
	r.registered = true
	if live {
		r.renewed.Store(r.since())
	}
	return live, nil
}

// newGeneration starts counting under a fresh instance id, after the
// lease was lost or the dirty set overflowed; the next re-sync writes
// every count under it. The old id's lease is then ended (again), so the
// fleet drops its counts within a tick.
func (r *Redis) newGeneration(ctx context.Context, oldLive bool) error {
	if !oldLive {
		r.markDown(errLeaseLost)
	}
	old := r.ID()
	r.gen.Add(1)
	r.setID()
	r.full.Store(true)
	r.mu.Lock()
	r.overflow = false
	r.mu.Unlock()
	if _, err := r.leaseOp(ctx, r.ID(), "register"); err != nil {
		return err
	}
	r.renewed.Store(r.since())
	r.log.Info("store instance id changed", slog.String("old", old), slog.String("instance", r.ID()))
	// NOTE: until the re-sync has written the new id's counts and ended
	// the old lease, both ids may count: the fleet refuses a little early,
	// never late. A lost lease is ended too: in a Redis Cluster the lease
	// set's master can lose it while the other masters keep the old id's
	// fields, which no script would drop otherwise (their TTL is renewed
	// by every write of the key).
	r.pendingExpire = old
	return nil
}

// leaseOp runs the lease script for id in mode and stores the dead list.
func (r *Redis) leaseOp(ctx context.Context, id, mode string) (bool, error) {
	res, err := leaseScript.Run(ctx, r.client, []string{r.leases},
		id, r.ttl.Milliseconds(), mode, r.leaseKeep().Milliseconds(), maxDeadIDs).Slice()
	if err != nil {
		return false, fmt.Errorf("running lease script: %w", err)
	}
	if len(res) != 2 {
		return false, fmt.Errorf("lease script answered %d values, want 2", len(res))
	}
	live, _ := res[0].(int64)
	list, _ := res[1].([]any)
	self := r.ID()
	dead := make([]any, 0, len(list))
	for _, d := range list {
		if s, ok := d.(string); ok && s != self {
			dead = append(dead, s)
		}
	}
	r.dead.Store(&dead)
	return live == 1, nil
}

// lease runs the lease script for id in mode, for Close.
func (r *Redis) lease(ctx context.Context, id, mode string) error {
	_, err := r.leaseOp(ctx, id, mode)
	return err
}

// leaseKeep is how long a dead instance stays on the dead list. Its
// fields are gone by then: a key is written (and cleaned) or expires
// within keyTTL after the whole fleet learned of the death.
func (r *Redis) leaseKeep() time.Duration { return 5 * r.ttl }

// resync writes this instance's true count of every dirty key, of every
// key it holds when full is set, and in the cluster layout of every
// fleet-wide key, whose totals it caches. It returns how many counters it
// wrote.
func (r *Redis) resync(ctx context.Context, full bool) (int, error) {
	r.epoch.Add(1) // odd: operations that overlap mark their keys dirty
	defer r.epoch.Add(1)

	dirty := r.takeDirty()
	keys := r.syncKeys(full, dirty)
	counts := r.held.countsOf(keys)
	others, err := r.writeCounts(ctx, keys, counts)
	if err != nil {
		r.restoreDirty(dirty)
		return 0, err
	}
	if r.cluster {
		r.storeOthers(keys, others)
	}
	if full {
		r.full.Store(false)
		r.lastFull = time.Duration(r.since())
	}
	if old := r.pendingExpire; old != "" {
		if err := r.lease(ctx, old, "expire"); err != nil {
			return 0, err
		}
		r.pendingExpire = ""
	}
	return len(keys), nil
}

// syncKeys lists the keys a re-sync writes, each once: the dirty ones,
// every shared key held when full is set, and in the cluster layout the
// fleet-wide keys, held or cached.
func (r *Redis) syncKeys(full bool, dirty map[Key]struct{}) []Key {
	set := make(map[Key]struct{}, len(dirty))
	for k := range dirty {
		set[k] = struct{}{}
	}
	if full || r.cluster {
		for _, k := range r.held.keys() {
			if full && r.shared(k) || r.cluster && fleetWide(k.Scope) {
				set[k] = struct{}{}
			}
		}
	}
	if r.cluster {
		r.mu.Lock()
		for k := range r.others {
			set[k] = struct{}{}
		}
		r.mu.Unlock()
	}
	keys := make([]Key, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	return keys
}

// writeCounts runs the sync script for each key in pipelined batches and
// returns, per key, the other live instances' total.
func (r *Redis) writeCounts(ctx context.Context, keys []Key, counts []int) ([]int, error) {
	others := make([]int, len(keys))
	id := r.ID()
	dead := *r.dead.Load()
	for lo := 0; lo < len(keys); lo += syncBatch {
		hi := min(lo+syncBatch, len(keys))
		err := r.writeBatch(ctx, keys[lo:hi], counts[lo:hi], others[lo:hi], id, dead)
		if isNoScript(err) {
			// Redis restarted between the load and now: load and retry.
			if err = loadScripts(ctx, r.client); err == nil {
				err = r.writeBatch(ctx, keys[lo:hi], counts[lo:hi], others[lo:hi], id, dead)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return others, nil
}

func (r *Redis) writeBatch(ctx context.Context, keys []Key, counts, others []int, id string, dead []any) error {
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	ttl := r.keyTTL().Milliseconds()
	for i, k := range keys {
		args := make([]any, 0, 4+len(dead))
		args = append(args, id, counts[i], ttl, len(dead))
		args = append(args, dead...)
		cmds[i] = syncScript.EvalSha(ctx, pipe, []string{keyName(r.prefix, k)}, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("running sync script: %w", err)
	}
	for i, c := range cmds {
		n, err := c.Int64()
		if err != nil {
			return fmt.Errorf("running sync script: %w", err)
		}
		others[i] = int(n)
	}
	return nil
}

// othersOf returns the other instances' total of a fleet-wide key in the
// cluster layout: cached from the last tick, or read now the first time.
func (r *Redis) othersOf(ctx context.Context, k Key) (int, error) {
	r.mu.Lock()
	n, ok := r.others[k]
	r.mu.Unlock()
	if ok {
		return n, nil
	}
	n, err := r.fleetCount(ctx, k, r.ID())
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	if len(r.others) < maxFleetKeys {
		r.others[k] = n
	}
	r.mu.Unlock()
	return n, nil
}

// storeOthers caches the totals a re-sync read for fleet-wide keys.
func (r *Redis) storeOthers(keys []Key, others []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, k := range keys {
		if fleetWide(k.Scope) && (len(r.others) < maxFleetKeys || r.hasOthers(k)) {
			r.others[k] = others[i]
		}
	}
}

// hasOthers reports whether k's total is cached. The caller holds r.mu.
func (r *Redis) hasOthers(k Key) bool {
	_, ok := r.others[k]
	return ok
}

// takeDirty empties the dirty set and returns what it held.
func (r *Redis) takeDirty() map[Key]struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dirty
	r.dirty = make(map[Key]struct{})
	return d
}

// restoreDirty puts back keys a failed re-sync did not write.
func (r *Redis) restoreDirty(keys map[Key]struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range keys {
		if len(r.dirty) >= maxDirty {
			r.overflow = true
			return
		}
		r.dirty[k] = struct{}{}
	}
}

// loadScripts loads every script into Redis's script cache (on every
// node of a cluster), so pipelines can use EVALSHA.
func loadScripts(ctx context.Context, c redis.UniversalClient) error {
	for _, s := range scripts {
		if err := s.Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("loading scripts: %w", err)
		}
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || strings.Contains(err.Error(), "NOSCRIPT"))
}
