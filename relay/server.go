// Package relay is wsguard's data plane: it accepts connections, admits
// or refuses each WebSocket handshake before any upstream dial, and then
// relays frames between client and upstream while it enforces the
// route's policy (idle time counted in data frames, the guard's own
// pings, lifetime, message size and rate, slow readers, close codes).
//
// Idle connections own no goroutine: one epoll instance waits on all of
// them and wakes a short-lived pump when bytes arrive, over TLS too (see
// tls.go). Plain HTTP requests on a route with http: passthrough are
// proxied on the handshake goroutine (see passthrough.go). The package is
// Linux-only.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/wiring"
	"github.com/wsguard/wsguard/store"
)

// Options are the parts of a Server that do not come from the config.
type Options struct {
	// Logger receives the server's logs. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the server's metrics. Nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
}

// Server is a WebSocket-aware reverse proxy. Create it with New, then
// call Serve with a listener. Its methods are safe for concurrent use.
type Server struct {
	log      *slog.Logger
	metrics  *relayMetrics
	store    wiring.CounterStore
	shared   *store.Redis // the store when it is shared; nil for memory
	adm      *admission.Admitter
	routes   atomic.Pointer[routes]
	poller   *poller
	refusals *refusalLog
	tls      *serverTLS // the listener's TLS; nil for plain TCP, fixed at New

	// afterEvict, when set, runs between an eviction and the retry of the
	// handshake it made room for: tests use it to play a handshake that
	// takes the freed slot first.
	afterEvict atomic.Pointer[func()]

	unusableLog sometimes // warnings about unusable forwarding headers

	refusedPrefixes *windowedTop // heavy refused client prefixes, last minutes
	refusedUsers    *windowedTop // heavy refused users, last minutes

	pending  atomic.Int64
	draining atomic.Bool
	closed   chan struct{} // closed by Close or at the end of Shutdown
	once     sync.Once

	mu  sync.Mutex // guards lns
	lns map[net.Listener]struct{}

	connsMu       sync.Mutex // guards conns, nconns, drained, fair, anon, underPressure
	conns         conn       // sentinel of the list of open connections
	nconns        int
	fair          *fairIndex    // open connections by client prefix
	anon          *fairIndex    // open anonymous connections by client prefix
	underPressure bool          // last value of wsguard_pressure
	drained       chan struct{} // closed when nconns reaches zero while draining
}

// Stats is a snapshot of the server's counts, for the admin API and
// tests.
type Stats struct {
	Open           int  `json:"open"`            // upgraded connections
	Pending        int  `json:"pending"`         // handshakes in progress
	Counters       int  `json:"counters"`        // non-zero admission counters
	RatePrefixes   int  `json:"rate_prefixes"`   // prefixes in the handshake-rate table
	MaxConnections int  `json:"max_connections"` // limits.max_connections in force
	Draining       bool `json:"draining"`
}

// New returns a Server for cfg, which must be valid (config.Validate).
func New(cfg config.Config, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var stls *serverTLS
	if cfg.TLS.Enabled() {
		var err error
		if stls, err = newServerTLS(cfg.TLS, log); err != nil {
			return nil, err
		}
	}
	rs, err := compileRoutes(cfg, log)
	if err != nil {
		return nil, err
	}
	p, err := newPoller()
	if err != nil {
		rs.id.close()
		return nil, err
	}
	st, shared, err := wiring.Store(cfg, log, opts.Registerer)
	if err != nil {
		p.closeFDs()
		rs.id.close()
		return nil, err
	}
	s := &Server{
		log:      log,
		metrics:  newRelayMetrics(opts.Registerer),
		store:    st,
		shared:   shared,
		adm:      admission.New(st, wiring.Policy(cfg), cfg.Limits.RateTableSize),
		poller:   p,
		tls:      stls,
		closed:   make(chan struct{}),
		lns:      make(map[net.Listener]struct{}),
		drained:  make(chan struct{}),
		refusals: newRefusalLog(log),
		fair:     newFairIndex(0),
		anon:     newFairIndex(1),
	}
	s.unusableLog.interval = 10 * time.Second
	s.refusedPrefixes = newWindowedTop(64, 5, time.Minute)
	s.refusedUsers = newWindowedTop(64, 5, time.Minute)
	s.conns.prev, s.conns.next = &s.conns, &s.conns
	s.routes.Store(rs)
	s.metrics.Max.Set(float64(cfg.Limits.MaxConnections))
	go p.run()
	go s.refusals.run(s.closed, 10*time.Second)
	if stls != nil && cfg.TLS.WatchInterval > 0 {
		go stls.watch(cfg.TLS.WatchInterval.Std(), s.closed)
	}
	return s, nil
}

// Reload applies a new config to later handshakes. Open connections keep
// the routes and policies they started with. Listen addresses are not
// changed by a reload, nor is whether the listener speaks TLS; the TLS
// files are read again, and if they cannot be, the reload fails and the
// certificate in force stays.
func (s *Server) Reload(cfg config.Config) error {
	if cfg.TLS.Enabled() != (s.tls != nil) {
		return errors.New("tls: turning TLS on or off needs a restart")
	}
	if s.tls != nil {
		// Read first, swap later: a reload that fails on the routes
		// must not have changed the certificate.
		if _, err := buildServerTLS(cfg.TLS); err != nil {
			return err
		}
	}
	rs, err := compileRoutes(cfg, s.log)
	if err != nil {
		return err
	}
	if s.tls != nil {
		if err := s.tls.load(cfg.TLS); err != nil {
			rs.id.close()
			return err
		}
	}
	old := s.routes.Swap(rs)
	s.adm.SetPolicy(wiring.Policy(cfg))
	s.metrics.Max.Set(float64(cfg.Limits.MaxConnections))
	// Handshakes still using the old snapshot may verify tokens with its
	// authenticator: closing only stops its background refresh.
	old.id.close()
	old.closeIdle()
	return nil
}

// Serve accepts connections on ln until ln is closed or the server shuts
// down. It always returns a non-nil error; after Shutdown or Close it is
// net.ErrClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return net.ErrClosed
	default:
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.draining.Load() || errors.Is(err, net.ErrClosed) {
				return net.ErrClosed
			}
			// Out of descriptors or a similar passing failure: wait a
			// little rather than spin, as the kernel keeps the backlog.
			var ne net.Error
			if errors.As(err, &ne) || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed", slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
				select {
				case <-time.After(backoff):
					continue
				case <-s.closed:
					return net.ErrClosed
				}
			}
			return fmt.Errorf("accepting: %w", err)
		}
		backoff = 0
		s.accept(nc)
	}
}

// accept starts the handshake of a new connection, or refuses it at once
// when too many handshakes are already in progress.
func (s *Server) accept(nc net.Conn) {
	rs := s.routes.Load()
	if s.pending.Add(1) > int64(rs.cfg.Limits.MaxPendingHandshakes) {
		s.pending.Add(-1)
		s.metrics.Handshakes.WithLabelValues("refused", "max_pending_handshakes").Inc()
		s.refusals.add("max_pending_handshakes")
		// Over TLS a plain answer would be garbage to the client, and a
		// TLS handshake is what there is no room for: just close.
		if s.tls == nil {
			writeRefusal(nc, refusal{status: 503, reason: "max_pending_handshakes limit reached", retryAfter: time.Second})
		}
		nc.Close()
		return
	}
	s.metrics.Pending.Inc()
	go s.handshake(nc, rs, time.Now())
}

// register adds an upgraded connection to the list of open ones.
func (s *Server) register(c *conn) {
	s.connsMu.Lock()
	c.prev, c.next = s.conns.prev, &s.conns
	s.conns.prev.next = c
	s.conns.prev = c
	s.nconns++
	s.fair.add(c)
	if c.lease.User() == "" {
		s.anon.add(c)
	}
	s.notePressure(s.nconns)
	s.connsMu.Unlock()
	s.metrics.Open.WithLabelValues(c.route.path, authLabel(c)).Inc()
}

// authLabel says whether a connection is authenticated, for metrics.
func authLabel(c *conn) string {
	if c.lease.User() != "" {
		return "authenticated"
	}
	return "anonymous"
}

// connDone accounts for a finished connection.
func (s *Server) connDone(c *conn) {
	s.releaseLease(c)
	s.connsMu.Lock()
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
	s.nconns--
	s.fair.remove(c)
	s.anon.remove(c)
	s.notePressure(s.nconns)
	if s.nconns == 0 && s.draining.Load() {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
	s.connsMu.Unlock()

	c.mu.Lock()
	code, by, reason := c.closeCode, c.closeBy, c.closeReason
	c.mu.Unlock()
	if code == 0 {
		code = frame.CloseAbnormal
	}
	s.metrics.Open.WithLabelValues(c.route.path, authLabel(c)).Dec()
	s.metrics.closed(code, by)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("connection closed", slog.String("route", c.route.path),
			slog.Int("code", int(code)), slog.String("by", by), slog.String("reason", reason),
			slog.Duration("age", time.Duration(time.Now().UnixNano()-c.start)))
	}
}

// openConns returns the open connections.
func (s *Server) openConns() []*conn {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	out := make([]*conn, 0, s.nconns)
	for c := s.conns.next; c != &s.conns; c = c.next {
		out = append(out, c)
	}
	return out
}

// Stats returns the server's current counts.
func (s *Server) Stats() Stats {
	s.connsMu.Lock()
	open := s.nconns
	s.connsMu.Unlock()
	return Stats{
		Open:           open,
		Pending:        int(s.pending.Load()),
		Counters:       s.store.Len(),
		RatePrefixes:   s.adm.RateTableLen(),
		MaxConnections: s.routes.Load().cfg.Limits.MaxConnections,
		Draining:       s.draining.Load(),
	}
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Shutdown drains the server: it stops accepting, closes open
// connections with 1001 spread over timeouts.drain, and waits for them
// to end, or for ctx, after which the rest are dropped.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		return errors.New("relay: shutdown already started")
	}
	s.closeListeners()
	rs := s.routes.Load()
	drain := rs.cfg.Timeouts.Drain.Std()

	conns := s.openConns()
	if len(conns) == 0 {
		s.connsMu.Lock()
		if s.nconns == 0 {
			close(s.drained)
		}
		s.connsMu.Unlock()
	}
	var gap time.Duration
	if len(conns) > 0 {
		gap = drain / time.Duration(len(conns))
	}
	var err error
	for i, c := range conns {
		// On its own goroutine: a close frame to a client that does not
		// read waits for timeouts.write, and must not hold up the rest.
		go c.shutdown(frame.CloseGoingAway, frame.CloseGoingAway, "going away", false)
		if gap > 0 && i < len(conns)-1 {
			select {
			case <-time.After(gap):
			case <-ctx.Done():
				gap = 0
			}
		}
	}
	select {
	case <-s.drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	return err
}

// Close stops the server at once: listeners close and every connection
// drops without a close handshake.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.draining.Store(true)
		s.closeListeners()
		close(s.closed)
		for _, c := range s.openConns() {
			c.finish()
		}
		s.poller.close()
		s.routes.Load().id.close()
		s.routes.Load().closeIdle()
		if s.shared != nil {
			s.shared.Close()
		}
	})
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.lns {
		ln.Close()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
