package wsguard

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/auth"
	"github.com/wsguard/wsguard/internal/httphead"
	"github.com/wsguard/wsguard/store"
)

type ctxKey int

const (
	keyClient ctxKey = iota
	keyUser
)

// ClientKey returns the client prefix an admitted request counts under
// (its address masked to limits.ipv4_prefix or limits.ipv6_prefix), from
// the context of a request that went through Guard.Handler. It reports
// false when the request's RemoteAddr was not an address.
func ClientKey(ctx context.Context) (netip.Prefix, bool) {
	p, _ := ctx.Value(keyClient).(netip.Prefix)
	return p, p.IsValid()
}

// User returns the authenticated user of a request that went through
// Guard.Handler. It reports false when auth is off or the request was
// anonymous.
func User(ctx context.Context) (string, bool) {
	u, ok := ctx.Value(keyUser).(string)
	return u, ok && u != ""
}

// Handler returns a handler that admits WebSocket upgrade requests before
// next runs, and passes every other request to next untouched.
//
// An upgrade is checked in the gateway's order: the handshake rate of the
// client address, then its token when auth is configured, then the
// connection limits. A refusal is answered here, with the gateway's
// status, Retry-After and one-line body, and next does not run. An
// admitted request reaches next with ClientKey and User in its context
// and a ResponseWriter whose Hijack returns a net.Conn that frees the
// connection's slot when it is closed. If next returns without hijacking,
// or panics, the slot is freed then.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		lease, ok := g.admit(w, r)
		if !ok {
			return
		}
		g.serve(next, w, r, lease)
	})
}

// admit runs the checks and, when they pass, returns the lease. On a
// refusal it has answered the request.
func (g *Guard) admit(w http.ResponseWriter, r *http.Request) (admission.Lease, bool) {
	fields := headerFields(r.Header)
	client := g.resolver.Resolve(peerAddr(r.RemoteAddr), fields)

	// The rate goes first: it is the cheapest refusal, and it bounds
	// the cost of verifying tokens.
	if ref := g.adm.Handshake(client.Addr, nil); ref != nil {
		g.refuse(w, ref)
		return admission.Lease{}, false
	}
	var user string
	if g.auth != nil {
		req := httphead.Request{Method: []byte(r.Method), Target: []byte(r.RequestURI),
			Major: r.ProtoMajor, Minor: r.ProtoMinor, Fields: fields}
		var aerr *auth.Error
		if user, _, aerr = g.auth.Authenticate(&req); aerr != nil {
			g.metrics.handshakes.WithLabelValues("refused", "auth").Inc()
			w.Header().Set("WWW-Authenticate", aerr.WWWAuthenticate())
			writeRefusal(w, aerr.Status(), "unauthorized: "+aerr.Reason, 0)
			return admission.Lease{}, false
		}
	}

	lease, ref, err := g.adm.Acquire(r.Context(), admission.Request{
		Addr: client.Addr, User: user, Anonymous: g.auth != nil && user == "",
	})
	if err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			g.log.Error("admission failed", slog.String("error", err.Error()))
		}
		g.metrics.handshakes.WithLabelValues("failed", "store_error").Inc()
		writeRefusal(w, http.StatusServiceUnavailable, "admission unavailable", time.Second)
		return admission.Lease{}, false
	}
	if ref != nil {
		g.refuse(w, ref)
		return admission.Lease{}, false
	}
	g.open.Add(1)
	g.metrics.open.Inc()
	g.metrics.handshakes.WithLabelValues("accepted", "ok").Inc()
	return lease, true
}

// serve runs next with an admitted request and frees the slot unless the
// connection was hijacked, in which case closing it frees the slot.
func (g *Guard) serve(next http.Handler, w http.ResponseWriter, r *http.Request, lease admission.Lease) {
	rw := &responseWriter{
		ResponseWriter: w,
		release:        sync.OnceFunc(func() { g.release(lease) }),
		frames:         g.frames,
		closes:         g.metrics.policyClose,
	}
	// A handler that panics after hijacking leaves the connection to
	// nobody (net/http closes only what it still owns): close it, so the
	// slot and the socket are freed. The panic goes on unrecovered.
	returned := false
	defer func() {
		c := rw.hijacked.Load()
		switch {
		case c == nil:
			rw.release()
		case !returned:
			c.Close()
		}
	}()

	ctx := context.WithValue(r.Context(), keyClient, lease.Prefix())
	if u := lease.User(); u != "" {
		ctx = context.WithValue(ctx, keyUser, u)
	}
	next.ServeHTTP(rw, r.WithContext(ctx))
	returned = true
}

// refuse answers an admission refusal as the gateway does.
func (g *Guard) refuse(w http.ResponseWriter, ref *admission.Refusal) {
	g.metrics.handshakes.WithLabelValues("refused", strings.ReplaceAll(ref.Limit, ".", "_")).Inc()
	writeRefusal(w, ref.Status, ref.Limit+" limit reached", ref.RetryAfter)
}

// writeRefusal writes the gateway's refusal: a one-line text body naming
// the limit or rule, Retry-After in whole seconds rounded up, and the
// connection closed after.
func writeRefusal(w http.ResponseWriter, status int, reason string, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Connection", "close")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(status)
	w.Write([]byte(reason + "\n"))
}

// isUpgrade reports whether r asks for a WebSocket upgrade.
func isUpgrade(r *http.Request) bool {
	return hasToken(r.Header["Connection"], "upgrade") && hasToken(r.Header["Upgrade"], "websocket")
}

// hasToken reports whether a comma-separated header holds token, in any case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// headerFields lists r's header lines in the form clientip and auth read.
func headerFields(h http.Header) httphead.Fields {
	fields := make(httphead.Fields, 0, len(h))
	for name, values := range h {
		for _, v := range values {
			fields = append(fields, httphead.Field{Name: []byte(name), Value: []byte(v)})
		}
	}
	return fields
}

// peerAddr parses http.Request.RemoteAddr; an unparsable one is the zero
// Addr.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
