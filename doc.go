// Package wsguard puts the wsguard gateway's admission in front of a Go
// WebSocket server, in-process, without a proxy hop.
//
// A Guard applies the same rules as the gateway, with the same code: the
// client address is resolved behind trusted proxies (package clientip),
// the handshake rate of that address is checked, a JWT is verified when
// auth is configured (package auth), and the connection limits (global,
// per client prefix, per user) are taken from a store (package store),
// either in this process or in Redis, shared with gateways and other
// Guards. Settings come in the gateway's config schema (package config):
//
//	cfg := config.Default()
//	cfg.Limits.PerIP = 10
//	guard, err := wsguard.New(wsguard.Options{Config: cfg})
//	if err != nil {
//		return err
//	}
//	defer guard.Close()
//	http.Handle("/ws", guard.Handler(chatHandler))
//
// # Refusals
//
// Handler checks an upgrade request (Upgrade: websocket with Connection:
// upgrade) before the wrapped handler runs; other requests pass through
// untouched. A refused request gets the gateway's answer and the wrapped
// handler never runs:
//
//   - 429 for per-client limits (handshake_rate, per_ip, per_user, prefix
//     tiers), 503 for shared ones (max_connections, a store that cannot
//     answer), with Retry-After in whole seconds and a one-line body naming
//     the limit, such as "per_ip limit reached"
//   - 401 with WWW-Authenticate for a missing or invalid token
//
// # Slots and hijacked connections
//
// An admitted request holds a slot. The wrapped handler gets a
// ResponseWriter whose Hijack (directly, or through http.ResponseController)
// returns a net.Conn that frees the slot on its first Close, whoever
// calls it: the WebSocket library, the handler, or a read error's
// cleanup. If the handler returns without hijacking, the slot is freed
// then; if it panics, the slot is freed, a connection it had hijacked is
// closed, and the panic goes on. No cooperation of the handler is needed,
// so any library that hijacks works: gorilla/websocket, coder/websocket,
// gobwas/ws and hand-written upgrades. A hijacked connection the handler
// never closes holds its slot, as it holds its socket.
//
// # Context
//
// ClientKey and User read, from the request's context, the client prefix
// the connection counts under and the authenticated user.
//
// # What the Guard does not do
//
// The Guard admits; it does not relay. The gateway's frame-level
// policies (idle timeout on data frames, message size cap and rate,
// read and write deadlines, close on pressure) are not applied in-process:
// configure the WebSocket library for them (gorilla/websocket:
// Conn.SetReadLimit and SetReadDeadline; coder/websocket: Conn.SetReadLimit
// and contexts). Route sections and per-route limits, origin checks,
// PROXY protocol, fair eviction under pressure and max_pending_handshakes
// are gateway features too. With a token in the query or in
// Sec-WebSocket-Protocol, the handler sees the request as the client sent
// it: the gateway's rewriting of the target and the protocol list is not
// done, and a library that checks subprotocols must accept "wsguard.bearer"
// itself.
//
// # Observability
//
// Options.Registerer receives wsguard_middleware_handshakes_total (by
// outcome and reason) and wsguard_middleware_connections_open, plus the
// Redis store's metrics when it is used; no metric is labelled by client
// or user. Options.Logger receives store errors only.
//
// Runnable examples for gorilla/websocket and coder/websocket are in the
// module github.com/wsguard/wsguard/examples/gowebsocket, kept apart so
// that this module does not depend on gorilla/websocket.
package wsguard
