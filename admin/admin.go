// Package admin serves the operator's side of wsguard on its own
// listener: liveness and readiness, Prometheus metrics, a JSON API to see
// and act on the connections, and a live status page. It is never
// mounted on the public listener.
package admin

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsguard/wsguard/metrics"
	"github.com/wsguard/wsguard/relay"
)

// Source is what the admin handler reports on and acts on; *relay.Server
// is one.
type Source interface {
	Stats() relay.Stats
	Draining() bool
	TopOpen(k int) (prefixes, users []relay.Count)
	TopRefused(k int, window time.Duration) (prefixes, users []relay.Count)
	Refusals() map[string]uint64
	Kick(prefix netip.Prefix, user string, code uint16, reason string) int
}

// Options configure Handler. The zero value serves health and metrics
// from the default gatherer and refuses the API.
type Options struct {
	// Gatherer serves /metrics. Nil: prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// FDReadyShare marks the gateway not ready when open descriptors
	// exceed this share of the limit. Zero: 0.9.
	FDReadyShare float64
	// Token, when set, is the bearer token /admin/api/ requires.
	Token string
	// Open lets /admin/api/ answer without a token. Set it only when the
	// admin listener is on loopback and no token is configured.
	Open bool
	// Drain starts a graceful drain of the whole process, as SIGTERM
	// does. Nil: POST /admin/api/drain answers 501.
	Drain func()
	// Ready, if set, is asked as well by /readyz (for example whether the
	// store is up); a non-empty answer is the reason it is not ready.
	Ready func() string
}

//go:embed static/status.html
var statusPage []byte

// Handler returns the admin HTTP handler. The paths are documented in
// README.md ("Operating it").
func Handler(src Source, opts Options) http.Handler {
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	if opts.FDReadyShare == 0 {
		opts.FDReadyShare = 0.9
	}
	a := &api{src: src, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(statusPage)
	})
	mux.Handle("GET /admin/api/status", a.guard(a.status))
	mux.Handle("GET /admin/api/stats", a.guard(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, src.Stats())
	}))
	mux.Handle("GET /admin/api/top", a.guard(a.top))
	mux.Handle("POST /admin/api/kick", a.guard(a.kick))
	mux.Handle("POST /admin/api/drain", a.guard(a.drain))
	return mux
}

type api struct {
	src  Source
	opts Options
}

func (a *api) readyz(w http.ResponseWriter, _ *http.Request) {
	reason := ""
	switch {
	case a.src.Draining():
		reason = "draining"
	case fdShare() > a.opts.FDReadyShare:
		reason = "near the file descriptor limit"
	case a.opts.Ready != nil:
		reason = a.opts.Ready()
	}
	if reason != "" {
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// guard requires the bearer token on the API, or an open loopback
// listener.
func (a *api) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Token == "" {
			if !a.opts.Open {
				writeError(w, http.StatusForbidden,
					"the admin API needs admin.token_file when admin_listen is not a loopback address")
				return
			}
			h(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.opts.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wsguard admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong admin token")
			return
		}
		h(w, r)
	})
}

// Status is the body of GET /admin/api/status.
type Status struct {
	Time     time.Time         `json:"time"`
	Stats    relay.Stats       `json:"stats"`
	FDs      FDs               `json:"fds"`
	Refusals map[string]uint64 `json:"refusals"` // since start, by reason
	Top      Top               `json:"top"`
}

// FDs reports descriptor use.
type FDs struct {
	Open  int    `json:"open"`
	Limit uint64 `json:"limit"`
}

// Top lists the heaviest client prefixes and users.
type Top struct {
	OpenPrefixes    []relay.Count `json:"open_prefixes"`
	OpenUsers       []relay.Count `json:"open_users"`
	RefusedPrefixes []relay.Count `json:"refused_prefixes"` // within Window
	RefusedUsers    []relay.Count `json:"refused_users"`
	Window          string        `json:"window"`
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Status{
		Time:     time.Now().UTC(),
		Stats:    a.src.Stats(),
		FDs:      FDs{Open: metrics.OpenFDs(), Limit: metrics.FDLimit()},
		Refusals: a.src.Refusals(),
		Top:      a.topOf(10, 5*time.Minute),
	})
}

// top serves GET /admin/api/top?k=N&window=D (k at most 100, window at
// most 5m).
func (a *api) top(w http.ResponseWriter, r *http.Request) {
	k, window := 20, 5*time.Minute
	if s := r.URL.Query().Get("k"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "k must be a number from 1 to 100")
			return
		}
		k = n
	}
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 5*time.Minute {
			writeError(w, http.StatusBadRequest, "window must be a duration up to 5m")
			return
		}
		window = d
	}
	writeJSON(w, http.StatusOK, a.topOf(k, window))
}

func (a *api) topOf(k int, window time.Duration) Top {
	t := Top{Window: window.String()}
	t.OpenPrefixes, t.OpenUsers = a.src.TopOpen(k)
	t.RefusedPrefixes, t.RefusedUsers = a.src.TopRefused(k, window)
	return t
}

// KickRequest is the body of POST /admin/api/kick.
type KickRequest struct {
	Prefix string `json:"prefix"` // a CIDR or an address; its connections close
	User   string `json:"user"`   // a user id; its connections close
	Code   uint16 `json:"code"`   // close code for the client, default 1008
	Reason string `json:"reason"` // close reason, default "closed by operator"
}

func (a *api) kick(w http.ResponseWriter, r *http.Request) {
	var req KickRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return
	}
	var prefix netip.Prefix
	if req.Prefix != "" {
		p, err := parsePrefix(req.Prefix)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid prefix "+strconv.Quote(req.Prefix))
			return
		}
		prefix = p
	}
	if !prefix.IsValid() && req.User == "" {
		writeError(w, http.StatusBadRequest, "give a prefix or a user")
		return
	}
	if req.Code == 0 {
		req.Code = 1008
	}
	if req.Code < 1000 || req.Code > 4999 || (req.Code > 1003 && req.Code < 1007) || req.Code == 1015 {
		writeError(w, http.StatusBadRequest, "code must be a close code that may be sent (1000-4999)")
		return
	}
	if len(req.Reason) > 120 {
		writeError(w, http.StatusBadRequest, "reason must be at most 120 bytes")
		return
	}
	n := a.src.Kick(prefix, req.User, req.Code, req.Reason)
	writeJSON(w, http.StatusOK, map[string]int{"closed": n})
}

func (a *api) drain(w http.ResponseWriter, _ *http.Request) {
	if a.opts.Drain == nil {
		writeError(w, http.StatusNotImplemented, "drain is not available here")
		return
	}
	go a.opts.Drain()
	writeJSON(w, http.StatusAccepted, map[string]bool{"draining": true})
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// fdShare returns open descriptors over the soft limit, or 0 if unknown.
func fdShare() float64 {
	lim := metrics.FDLimit()
	open := metrics.OpenFDs()
	if lim == 0 || open < 0 {
		return 0
	}
	return float64(open) / float64(lim)
}

// IsLoopback reports whether a listen address binds only loopback
// interfaces ("127.0.0.1:9090", "[::1]:9090", "localhost:9090").
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
