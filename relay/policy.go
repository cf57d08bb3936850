package relay

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/frame"
)

// policy is a route's resolved timeouts and message rules. Connections
// keep the policy they started with across reloads.
type policy struct {
	handshake      time.Duration
	dial           time.Duration
	idle           time.Duration
	idleBoth       bool // upstream data frames reset the idle timer too
	pingInterval   time.Duration
	pongTimeout    time.Duration
	maxLifetime    time.Duration
	lifetimeJitter float64
	write          time.Duration
	closeTimeout   time.Duration
	maxSize        int64
	msgRate        float64
	msgBurst       int
	overRateClose  bool
}

// route is a compiled config.Route.
type route struct {
	path     string
	dialAddr string // host:port of the upstream
	basePath string // upstream URL path, prepended to the request target
	origins  []string
	adm      *admission.Route
	policy   *policy
}

// routes is an immutable route table, swapped whole on reload.
type routes struct {
	cfg  config.Config
	list []route // parallel to cfg.Routes
}

func compileRoutes(cfg config.Config) (*routes, error) {
	rs := &routes{cfg: cfg, list: make([]route, len(cfg.Routes))}
	for i, r := range cfg.Routes {
		u, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %s: parsing upstream: %w", r.Path, err)
		}
		switch u.Scheme {
		case "http", "ws":
		default:
			return nil, fmt.Errorf("route %s: upstream scheme %q is not supported yet (use http or ws)", r.Path, u.Scheme)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
		origins := cfg.AllowedOrigins
		rs.list[i] = route{
			path:     r.Path,
			dialAddr: host,
			basePath: strings.TrimSuffix(u.Path, "/"),
			origins:  origins,
			adm: &admission.Route{
				Name:           r.Path,
				MaxConnections: r.Limits.MaxConnections,
				PerIP:          r.Limits.PerIP,
				HandshakeRate:  r.Limits.HandshakeRate.PerSecond(),
				HandshakeBurst: r.Limits.HandshakeBurst,
			},
			policy: compilePolicy(r.Timeouts, r.Messages),
		}
	}
	return rs, nil
}

func compilePolicy(t config.Timeouts, m config.Messages) *policy {
	return &policy{
		handshake:      t.Handshake.Std(),
		dial:           t.UpstreamDial.Std(),
		idle:           t.Idle.Std(),
		idleBoth:       t.IdleCounts != "client",
		pingInterval:   t.PingInterval.Std(),
		pongTimeout:    t.PongTimeout.Std(),
		maxLifetime:    t.MaxLifetime.Std(),
		lifetimeJitter: float64(t.LifetimeJitter),
		write:          t.Write.Std(),
		closeTimeout:   t.Close.Std(),
		maxSize:        int64(m.MaxSize),
		msgRate:        m.Rate.PerSecond(),
		msgBurst:       m.Burst,
		overRateClose:  m.OverRate == "close",
	}
}

// match returns the route for a request path, or nil.
func (rs *routes) match(path []byte) *route {
	r, ok := rs.cfg.RouteFor(string(path))
	if !ok {
		return nil
	}
	for i := range rs.cfg.Routes {
		if &rs.cfg.Routes[i] == r {
			return &rs.list[i]
		}
	}
	return nil
}

// originAllowed reports whether a handshake's Origin passes the route's
// list. Requests without Origin come from non-browser clients, which can
// send any Origin they like, so the check only protects browsers.
func (r *route) originAllowed(origin []byte) bool {
	if len(r.origins) == 0 || len(origin) == 0 {
		return true
	}
	for _, o := range r.origins {
		if o == "*" || strings.EqualFold(o, string(origin)) {
			return true
		}
	}
	return false
}

// ending says how the guard ends a connection.
type ending struct {
	client   uint16 // close code sent to the client
	upstream uint16 // close code sent to the upstream
	reason   string
}

// onHeader decides what to do with a frame once its header is known.
// now is the time of the read, in unix nanoseconds.
func (pm *pump) onHeader(h frame.Header, now int64) (action, *ending) {
	if _, err := pm.seq.Check(h); err != nil {
		return actDrop, pm.violationEnding(err)
	}
	c := pm.c
	done := c.closing.Load() || pm.sawClose.Load()
	if pm.dir == fromUpstream {
		if h.Op == frame.OpClose {
			pm.sawClose.Store(true)
			pm.finishAtEnd = c.pumps[fromClient].sawClose.Load()
		}
		if done {
			return actDrop, nil
		}
		if h.Op.IsData() && c.pol().idleBoth {
			c.touch(now)
		}
		return actForward, nil
	}

	switch {
	case h.Op == frame.OpPong || h.Op == frame.OpClose:
		return actCollect, nil
	case done:
		return actDrop, nil
	case h.Op.IsData():
		c.touch(now)
		if max := c.pol().maxSize; max > 0 && pm.seq.MessageSize() > max {
			c.srv.metrics.tooBig.Inc()
			return actDrop, &ending{frame.CloseTooBig, frame.CloseGoingAway, "message too big"}
		}
	}
	return actForward, nil
}

// onControl handles a client pong or close frame collected whole. It
// reports whether to forward it and whether the connection is done once
// it is forwarded.
func (pm *pump) onControl() (forward, finish bool, end *ending) {
	c := pm.c
	h := pm.p.Header()
	var buf [frame.MaxControlPayload]byte
	payload := buf[:copy(buf[:], pm.ctl.b[h.Size():pm.ctl.n])]
	frame.MaskBytes(h.Mask, 0, payload)

	if h.Op == frame.OpPong {
		if c.isGuardPong(payload) {
			return false, false, nil
		}
		return !c.closing.Load() && !pm.sawClose.Load(), false, nil
	}
	code, reason, err := frame.ParseClosePayload(payload)
	if err != nil {
		return false, false, pm.violationEnding(err)
	}
	if pm.sawClose.Swap(true) {
		return false, false, nil // a second close frame: ignore it
	}
	upDone := c.pumps[fromUpstream].sawClose.Load()
	if c.closing.Load() {
		// The answer to the guard's own close.
		return false, upDone, nil
	}
	c.setCloser(byClient, reason)
	c.setCloseCode(code)
	return true, upDone, nil
}

// violationEnding maps a protocol error of this pump's peer to how the
// connection ends: the client gets 1002 (or the error's code) when it
// broke the protocol, and 1011 when the upstream did.
func (pm *pump) violationEnding(err error) *ending {
	code, reason := frame.CloseProtocolError, err.Error()
	if pe, ok := err.(*frame.ProtocolError); ok {
		code, reason = pe.Code(), pe.Reason
	}
	pm.c.srv.metrics.violations.WithLabelValues(dirName(pm.dir)).Inc()
	if pm.dir == fromClient {
		return &ending{code, frame.CloseGoingAway, reason}
	}
	return &ending{frame.CloseInternalError, code, "upstream protocol error"}
}
