package wsguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/auth"
	"github.com/wsguard/wsguard/clientip"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/wiring"
	"github.com/wsguard/wsguard/store"
)

// Options configures a Guard. The zero value is usable: the defaults of
// config.Default, a memory store, no logs and no metrics.
type Options struct {
	// Config holds the settings, in the same schema as the gateway's YAML
	// file (see package config), and is validated as the file would be.
	// What applies is TrustedProxies, ClientIPHeader, Auth, Store and
	// Limits, less max_pending_handshakes and the pressure and eviction
	// settings, and with FramePolicies part of Timeouts and Messages;
	// routes, listeners, allowed_origins, proxy_protocol, admin and log
	// are the gateway's own.
	// Start from config.Default() and change what you need: the zero
	// Config means config.Default(), but a partly filled one is taken as
	// it is and is likely to fail validation.
	Config config.Config

	// FramePolicies turns on the gateway's frame-level rules for
	// hijacked connections, enforced on the bytes the WebSocket library
	// reads and writes through the net.Conn: timeouts.idle counted in
	// data frames only (with timeouts.idle_counts), timeouts.max_lifetime
	// with lifetime_jitter, timeouts.write on every write,
	// messages.max_size (1009) and messages.max_fragments (1008), with
	// timeouts.close for the close handshake. See the package
	// documentation for what each library gets.
	FramePolicies bool

	// Logger receives the few events worth a line (a failing store).
	// Nil: silent.
	Logger *slog.Logger

	// Registerer receives the guard's metrics, and those of the Redis
	// store when one is configured. Nil: no metrics. One registry takes
	// one Guard; New fails on a second.
	Registerer prometheus.Registerer
}

// Guard admits WebSocket upgrades before an http.Handler runs and holds
// each admitted connection's slot until its hijacked net.Conn closes.
// It is safe for concurrent use. Close releases its store and
// authenticator; build it once and share it between handlers.
type Guard struct {
	log      *slog.Logger
	metrics  *guardMetrics
	store    wiring.CounterStore
	redis    *store.Redis // nil with the memory store
	adm      *admission.Admitter
	resolver *clientip.Resolver
	auth     *auth.Authenticator // nil: auth off
	frames   *framePolicy        // nil: Options.FramePolicies off
	open     atomic.Int64        // leases held
}

// New builds a Guard from opts, which it copies. It fails when the
// settings are invalid, a key file cannot be read, or Redis is configured
// and its options are wrong.
func New(opts Options) (*Guard, error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	g := &Guard{log: log}
	trusted, err := clientip.ParseCIDRs(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("wsguard: trusted_proxies: %w", err)
	}
	h, err := clientip.ParseHeader(cfg.ClientIPHeader)
	if err != nil {
		return nil, fmt.Errorf("wsguard: client_ip_header: %w", err)
	}
	g.resolver = clientip.NewResolver(trusted, h)
	if g.auth, err = wiring.Authenticator(context.Background(), cfg.Auth, log); err != nil {
		return nil, fmt.Errorf("wsguard: %w", err)
	}
	if g.store, g.redis, err = wiring.Store(cfg, log, opts.Registerer); err != nil {
		g.Close()
		return nil, fmt.Errorf("wsguard: %w", err)
	}
	if g.metrics, err = newGuardMetrics(opts.Registerer); err != nil {
		g.Close()
		return nil, fmt.Errorf("wsguard: %w", err)
	}
	if opts.FramePolicies {
		g.frames = newFramePolicy(cfg)
	}
	g.adm = admission.New(g.store, wiring.Policy(cfg), cfg.Limits.RateTableSize)
	return g, nil
}

// config returns the settings New applies: defaults for a zero Config,
// validated with a placeholder route, since config.Validate wants one.
func (o *Options) config() (config.Config, error) {
	cfg := o.Config
	if reflect.DeepEqual(cfg, config.Config{}) {
		cfg = config.Default()
	}
	check := cfg
	check.Routes = []config.Route{check.NewRoute("/", "ws://127.0.0.1:1")}
	if err := check.Validate(); err != nil {
		return cfg, fmt.Errorf("wsguard: %w", err)
	}
	return cfg, nil
}

// Close releases the store's connections and stops the authenticator's
// key refresh. Connections still open keep working, but their slots are
// no longer returned to a shared store.
func (g *Guard) Close() error {
	if g.auth != nil {
		g.auth.Close()
	}
	if g.redis != nil {
		return g.redis.Close()
	}
	return nil
}

// Open returns how many connections this Guard has admitted and not yet
// released: handshakes in progress plus hijacked connections still open.
func (g *Guard) Open() int {
	return int(g.open.Load())
}

// release returns a lease and counts the connection closed.
func (g *Guard) release(l admission.Lease) {
	g.open.Add(-1)
	g.metrics.open.Dec()
	if err := g.adm.Release(context.Background(), l); err != nil && !errors.Is(err, store.ErrUnavailable) {
		g.log.Error("releasing connection slot", slog.String("error", err.Error()))
	}
}
