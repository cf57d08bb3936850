package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
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
	maxFragments   int
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
	tls      *tls.Config  // dials the upstream over TLS; nil for http and ws
	pass     *passthrough // proxies plain requests; nil: they are refused
}

// routes is an immutable snapshot of the config: the route table and the
// client identity rules, swapped whole on reload.
type routes struct {
	cfg  config.Config
	list []route // parallel to cfg.Routes
	id   *identity
}

func compileRoutes(cfg config.Config, log *slog.Logger) (*routes, error) {
	rs := &routes{cfg: cfg, list: make([]route, len(cfg.Routes))}
	for i, r := range cfg.Routes {
		u, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %s: parsing upstream: %w", r.Path, err)
		}
		port := "80"
		switch u.Scheme {
		case "http", "ws":
		case "https", "wss":
			port = "443"
		default:
			return nil, fmt.Errorf("route %s: upstream scheme %q is not supported (use http, https, ws or wss)", r.Path, u.Scheme)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), port)
		}
		upTLS, err := upstreamTLS(r)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Path, err)
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
			tls:    upTLS,
			pass:   newPassthrough(r, host, upTLS),
		}
	}
	id, err := newIdentity(context.Background(), cfg, log)
	if err != nil {
		return nil, err
	}
	rs.id = id
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
		maxFragments:   m.MaxFragments,
		msgRate:        m.Rate.PerSecond(),
		msgBurst:       m.Burst,
		overRateClose:  m.OverRate == "close",
	}
}

// closeIdle closes the idle upstream connections the routes' passthrough
// transports keep; requests in flight finish on theirs.
func (rs *routes) closeIdle() {
	for i := range rs.list {
		if p := rs.list[i].pass; p != nil {
			p.transport.CloseIdleConnections()
		}
	}
}

// upstreamScheme returns an upstream URL's scheme and host name.
func upstreamScheme(upstream string) (scheme, host string, ok bool) {
	u, err := url.Parse(upstream)
	if err != nil {
		return "", "", false
	}
	return u.Scheme, u.Hostname(), true
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
	switch {
	case h.Op == frame.OpClose:
		return actCollect, nil
	case c.closing.Load() || pm.sawClose.Load():
		// Nothing but a close may follow a close.
		return actDrop, nil
	case h.Op == frame.OpPong && pm.dir == fromClient:
		return actCollect, nil
	case !h.Op.IsData():
		return actForward, nil
	case pm.dir == fromUpstream:
		if c.pol().idleBoth {
			c.touch(now)
		}
		return actForward, nil
	}
	c.touch(now)
	p := c.pol()
	if p.maxSize > 0 && pm.seq.MessageSize() > p.maxSize {
		c.srv.metrics.tooBig.Inc()
		return actDrop, &ending{frame.CloseTooBig, frame.CloseGoingAway, "message too big"}
	}
	if p.maxFragments > 0 && pm.seq.Fragments() > p.maxFragments {
		c.srv.metrics.tooBig.Inc()
		return actDrop, &ending{frame.ClosePolicyViolation, frame.CloseGoingAway, "too many fragments"}
	}
	return actForward, nil
}

// control is what to do with a collected control frame.
type control struct {
	forward bool // pass it on
	isClose bool // it is a close frame: the stream it goes to ends
	finish  bool // the close handshake is complete once it is passed on
}

// onControl handles a control frame collected whole: a client pong, or a
// close frame from either side.
func (pm *pump) onControl() (control, *ending) {
	c := pm.c
	h := pm.p.Header()
	var buf [frame.MaxControlPayload]byte
	payload := buf[:copy(buf[:], pm.ctl.b[h.Size():pm.ctl.n])]
	if h.Masked {
		frame.MaskBytes(h.Mask, 0, payload)
	}

	if h.Op == frame.OpPong {
		if c.isGuardPong(payload) {
			return control{}, nil
		}
		return control{forward: !c.closing.Load() && !pm.sawClose.Load()}, nil
	}
	code, reason, err := frame.ParseClosePayload(payload)
	if err != nil {
		return control{}, pm.violationEnding(err)
	}
	if pm.sawClose.Swap(true) {
		return control{}, nil // a second close frame: ignore it
	}
	otherDone := c.pumps[1-pm.dir].sawClose.Load()
	if c.closing.Load() {
		// The answer to the guard's own close.
		return control{finish: otherDone}, nil
	}
	if pm.dir == fromClient {
		c.setCloser(byClient, reason)
	} else {
		c.setCloser(byUpstream, reason)
	}
	c.setCloseCode(code)
	return control{forward: true, isClose: true, finish: otherDone}, nil
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
