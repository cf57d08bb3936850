package store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// RedisOptions configure NewRedis. Zero fields take the defaults named.
type RedisOptions struct {
	// Addr is one Redis server, "host:port"; default "127.0.0.1:6379".
	Addr string
	// Addrs are seed nodes of a Redis Cluster. When set, Addr is ignored
	// and the keys follow the cluster layout (see README).
	Addrs    []string
	Username string // ACL user; "" for the default user
	Password string // "" for none
	DB       int    // database number; 0 with Addrs
	// TLS, when not nil, is used for every connection to Redis.
	TLS *tls.Config
	// KeyPrefix starts every key name, default "wsguard:". Fleets that
	// share a Redis need different prefixes.
	KeyPrefix string
	// LeaseTTL is how long an instance's counts outlive its last
	// renewal, default 30s.
	LeaseTTL time.Duration
	// Timeout bounds each handshake's wait on Redis, default 50ms.
	Timeout time.Duration
	// OnFailure is what Acquire decides while Redis cannot answer.
	OnFailure FailureMode
	// FleetSize divides fleet-wide limits under FailLocal, default 1.
	FleetSize int
	// Logger receives one line per change of state. Nil discards.
	Logger *slog.Logger
	// Observer, if not nil, receives health and latency.
	Observer Observer

	clusterLayout bool          // tests: the cluster layout on one server
	tick          time.Duration // tests: the maintenance interval
	hook          redis.Hook    // tests: sees every command
}

// Internal bounds of the Redis store.
const (
	maxDirty     = 1 << 16 // keys remembered for re-sync before a generation change
	maxDeadIDs   = 256     // dead instances handed to the scripts
	maxFleetKeys = 4096    // fleet-wide counters whose totals are cached
	syncBatch    = 256     // commands per pipeline when re-syncing
)

// Redis is a Store shared by a fleet of gateways through Redis. Each
// counter is a hash of counts by instance; an instance's counts stop
// counting once its lease, which it renews in the background, ends.
// Decisions with Redis are exact across the fleet: one Lua script checks
// and takes every counter of a decision, or none. While Redis cannot
// answer, decisions follow RedisOptions.OnFailure, and once it answers
// again the instance writes its true counts back.
//
// Create it with NewRedis and stop it with Close. It is safe for
// concurrent use.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	leases  string // name of the lease set
	cluster bool   // cluster layout: fleet-wide counters decided locally
	mode    FailureMode
	fleet   int
	ttl     time.Duration
	timeout time.Duration
	tick    time.Duration
	log     *slog.Logger
	obs     Observer

	held  *Memory   // connections this instance holds, by key: the truth
	start time.Time // origin of the monotonic times below

	base    string                 // random part of the instance id
	gen     atomic.Uint32          // generation of the instance id
	id      atomic.Pointer[string] // base + "." + gen, the field in every hash
	dead    atomic.Pointer[[]any]  // dead instance ids, as script arguments
	state   atomic.Int32           // stateUnknown, stateUp or stateDown
	renewed atomic.Int64           // nanoseconds after start of the last renewal
	epoch   atomic.Uint64          // odd while a re-sync writes counts
	full    atomic.Bool            // the next re-sync writes every count
	closed  atomic.Bool            // Close was called

	failures atomic.Int32              // failed operations since the last success
	downAt   atomic.Pointer[time.Time] // when the store last went down

	mu       sync.Mutex       // guards dirty, overflow, others
	dirty    map[Key]struct{} // keys whose count in Redis may be wrong
	overflow bool             // dirty filled up: keys were forgotten
	others   map[Key]int      // cluster layout: other instances' totals

	// Touched by the maintenance loop only (and NewRedis before it starts).
	lastFull      time.Duration // after start, of the last full re-sync
	registered    bool          // the first lease was added
	pendingExpire string        // an old id whose lease to end after the re-sync

	cancel    context.CancelFunc // stops the maintenance loop
	done      chan struct{}      // closed when the maintenance loop returns
	closeOnce sync.Once
	closeErr  error // from closing the client; set once by Close
}

// States of a Redis store.
const (
	stateUnknown int32 = iota
	stateUp
	stateDown
)

// NewRedis returns a store on the Redis that opts name and starts its
// maintenance loop. It tries to register with Redis for up to a second;
// if Redis does not answer, the store starts down, decides as
// opts.OnFailure says, and keeps trying in the background. It fails only
// on options it cannot use.
func NewRedis(opts RedisOptions) (*Redis, error) {
	r, err := newRedis(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	first, stop := context.WithTimeout(ctx, time.Second)
	r.maintain(first)
	stop()
	go r.run(ctx)
	return r, nil
}

func newRedis(opts RedisOptions) (*Redis, error) {
	quietClient.Do(func() { redis.SetLogger(discardLogger{}) })
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.FleetSize < 1 {
		opts.FleetSize = 1
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "wsguard:"
	}
	if strings.ContainsAny(opts.KeyPrefix, "{}") {
		return nil, fmt.Errorf("key prefix %q holds a brace, which would change the hash slots", opts.KeyPrefix)
	}
	if opts.OnFailure > FailClosed {
		return nil, fmt.Errorf("unknown failure mode %d", opts.OnFailure)
	}
	if opts.tick <= 0 {
		opts.tick = min(max(opts.LeaseTTL/10, 50*time.Millisecond), time.Second)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	var idb [6]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("choosing an instance id: %w", err)
	}
	r := &Redis{
		client:  redis.NewUniversalClient(clientOptions(opts)),
		prefix:  opts.KeyPrefix,
		leases:  leasesName(opts.KeyPrefix),
		cluster: len(opts.Addrs) > 0 || opts.clusterLayout,
		mode:    opts.OnFailure,
		fleet:   opts.FleetSize,
		ttl:     opts.LeaseTTL,
		timeout: opts.Timeout,
		tick:    opts.tick,
		log:     opts.Logger,
		obs:     opts.Observer,
		held:    NewMemory(),
		start:   time.Now(),
		base:    hex.EncodeToString(idb[:]),
		dirty:   make(map[Key]struct{}),
		others:  make(map[Key]int),
		done:    make(chan struct{}),
	}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	if opts.hook != nil {
		r.client.AddHook(opts.hook)
	}
	r.setID()
	r.dead.Store(new([]any))
	r.full.Store(true)
	return r, nil
}

// clientOptions maps opts onto go-redis: one server or a cluster, no
// retries of its own (the store decides what a failure means), and
// deadlines taken from each call's context.
func clientOptions(opts RedisOptions) *redis.UniversalOptions {
	addrs := opts.Addrs
	if len(addrs) == 0 {
		addr := opts.Addr
		if addr == "" {
			addr = "127.0.0.1:6379"
		}
		addrs = []string{addr}
	}
	dial := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	tlsConf := opts.TLS
	return &redis.UniversalOptions{
		Addrs:                 addrs,
		IsClusterMode:         len(opts.Addrs) > 0,
		Username:              opts.Username,
		Password:              opts.Password,
		DB:                    opts.DB,
		TLSConfig:             tlsConf,
		Protocol:              2,
		MaxRetries:            -1,
		PoolSize:              max(64, 32*runtime.GOMAXPROCS(0)), // handshakes come in bursts
		DialTimeout:           time.Second,
		DialerRetries:         1,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if tlsConf == nil {
				return dial.DialContext(ctx, network, addr)
			}
			td := &tls.Dialer{NetDialer: dial, Config: tlsConf}
			return td.DialContext(ctx, network, addr)
		},
	}
}

// ID returns the instance id this store counts under in Redis. It
// changes when the store had to start over (a lost lease).
func (r *Redis) ID() string { return *r.id.Load() }

// setID publishes the id of the current generation.
func (r *Redis) setID() {
	id := fmt.Sprintf("%s.%d", r.base, r.gen.Load())
	r.id.Store(&id)
}

// Up reports whether decisions are taken with Redis right now.
func (r *Redis) Up() bool { return r.state.Load() == stateUp }

// Ready returns "" when the store can admit handshakes, or why it cannot:
// only with FailClosed does a Redis that cannot answer make it unready.
func (r *Redis) Ready() string {
	if r.mode == FailClosed && !r.Up() {
		return "store unavailable"
	}
	return ""
}

// Len returns how many counters this instance holds a share of.
func (r *Redis) Len() int { return r.held.Len() }

// Count implements Store: the fleet's count, or this instance's for
// ScopeInstance. While Redis cannot answer it returns this instance's
// count and an error wrapping ErrUnavailable.
func (r *Redis) Count(ctx context.Context, key Key) (int, error) {
	mine, _ := r.held.Count(ctx, key)
	if key.Scope == ScopeInstance {
		return mine, nil
	}
	if !r.ready() {
		return mine, fmt.Errorf("counting %s: %w", key, ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if r.cluster && fleetWide(key.Scope) {
		others, err := r.othersOf(ctx, key)
		return mine + others, err
	}
	return r.fleetCount(ctx, key, "")
}

// fleetCount sums the live instances' counts of key, but not skip's.
func (r *Redis) fleetCount(ctx context.Context, key Key, skip string) (int, error) {
	fields, err := r.client.HGetAll(ctx, keyName(r.prefix, key)).Result()
	if err != nil {
		return 0, fmt.Errorf("counting %s: %w", key, err)
	}
	dead := *r.dead.Load()
	sum := 0
	for f, v := range fields {
		if f == skip || containsID(dead, f) {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("counting %s: field %s holds %q", key, f, v)
		}
		sum += n
	}
	return sum, nil
}

// Close stops renewing, says goodbye (the lease ends now, so the others
// stop counting this instance's connections within a tick) and closes
// the connections to Redis. Later calls count locally only.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.cancel()
		<-r.done
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := r.lease(ctx, r.ID(), "expire"); err != nil {
			r.log.Warn("store goodbye failed; this instance's counts end with its lease",
				slog.String("error", err.Error()))
		}
		r.closeErr = r.client.Close()
	})
	return r.closeErr
}

// ready reports whether decisions may go to Redis: the store is up and
// its lease was renewed recently enough that the fleet still counts it.
func (r *Redis) ready() bool {
	if r.state.Load() != stateUp || r.closed.Load() {
		return false
	}
	if time.Duration(r.since()-r.renewed.Load()) > r.ttl/2 {
		r.markDown(errLeaseStale)
		return false
	}
	return true
}

// since returns the monotonic time since the store was created.
func (r *Redis) since() int64 { return int64(time.Since(r.start)) }

var (
	errLeaseStale = errors.New("lease not renewed for half its TTL")
	errLeaseLost  = errors.New("lease ended or lost (Redis restarted, flushed, or this instance paused)")
)

// markDown switches to the failure mode, logging the change once.
func (r *Redis) markDown(err error) {
	if r.closed.Load() {
		return
	}
	r.full.Store(true)
	r.failures.Store(0)
	if r.state.Swap(stateDown) == stateDown {
		return
	}
	now := time.Now()
	r.downAt.Store(&now)
	r.obs.StoreUp(false)
	r.log.Warn("store down", slog.String("error", err.Error()),
		slog.String("on_failure", r.mode.String()), slog.String("instance", r.ID()))
}

// markUp switches to deciding with Redis, logging the change once.
func (r *Redis) markUp(synced int) {
	if r.state.Swap(stateUp) == stateUp {
		return
	}
	r.obs.StoreUp(true)
	attrs := []any{slog.String("instance", r.ID()), slog.Int("counters_synced", synced)}
	if at := r.downAt.Load(); at != nil {
		attrs = append(attrs, slog.Duration("down_for", time.Since(*at).Round(time.Millisecond)))
	}
	r.log.Info("store up", attrs...)
}

// failuresToDown is how many handshake-path operations in a row must fail
// before the store stops asking Redis: one slow answer decides one
// handshake locally, not the whole instance.
const failuresToDown = 3

// fail records a failed operation. A failed re-sync, or failuresToDown
// failed operations in a row, switch the store to its failure mode.
func (r *Redis) fail(op string, err error) {
	r.obs.StoreError(op)
	if r.failures.Add(1) >= failuresToDown || op == "sync" {
		r.markDown(fmt.Errorf("%s: %w", op, err))
	}
}

// succeed records a successful operation.
func (r *Redis) succeed(op string, start time.Time) {
	r.obs.StoreLatency(op, time.Since(start))
	if r.failures.Load() != 0 {
		r.failures.Store(0)
	}
}

func containsID(ids []any, id string) bool {
	for _, d := range ids {
		if d.(string) == id {
			return true
		}
	}
	return false
}
