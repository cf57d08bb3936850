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
// # Frame policies
//
// With Options.FramePolicies, a hijacked connection also enforces the
// gateway's frame-level rules on the bytes the WebSocket library reads
// and writes through it. A frame parser watches both directions as the
// bytes pass (nothing is copied or buffered) and applies:
//
//   - timeouts.idle, counted in data frames only: a client that sends
//     nothing but pings is closed with 1001 "idle timeout";
//     timeouts.idle_counts says whether the server's data frames count
//   - timeouts.max_lifetime, shortened by up to lifetime_jitter: 1001
//   - messages.max_size across fragments (1009) and
//     messages.max_fragments (1008); the frames before the one that
//     breaks the rule still reach the library
//   - RFC 6455 framing of client frames (1002 or the rule's code)
//   - timeouts.write on every write, unless the library set an earlier
//     deadline: a client that stops reading is cut off, and its slot
//     freed, once a write outlasts it
//
// When a rule ends a connection, the guard sends the close frame itself
// (between two of the library's frames; if the library is in the middle
// of one, the socket is shut instead), and from then on Read and Write
// return a *PolicyError naming the rule, so the library and the handler
// see why. The socket is closed once the client answers or
// timeouts.close has passed, whether or not the handler closes it.
// wsguard_middleware_policy_closes_total counts these ends by rule.
//
// Each library gets every rule when it upgrades through Guard.Handler's
// ResponseWriter, because every library reads and writes through the
// hijacked net.Conn:
//
//	library            idle  lifetime  size/fragments  framing  write deadline
//	gorilla/websocket  yes   yes       yes             yes      yes (an earlier SetWriteDeadline wins)
//	coder/websocket    yes   yes       yes             yes      yes
//	gobwas/ws          yes   yes       yes             yes      yes
//	hand-written       yes   yes       yes             yes      yes, if it writes through the conn
//
// The tests run the idle, size and write rules with gorilla/websocket,
// coder/websocket and gobwas/ws servers, and every rule with
// coder/websocket. With permessage-deflate, sizes are compressed
// sizes, as in the gateway. Not applied in-process: the guard's own
// pings (use the library's: coder's Conn.Ping, gorilla's WriteControl),
// message rates (messages.rate), and connections that never hijack,
// such as WebSockets over HTTP/2.
//
// # What the Guard does not do
//
// The Guard admits; it does not relay. Route sections and per-route
// limits, origin checks, PROXY protocol, fair eviction under pressure and
// max_pending_handshakes are gateway features. With a token in the query
// or in Sec-WebSocket-Protocol, the handler sees the request as the
// client sent it: the gateway's rewriting of the target and the protocol
// list is not done, and a library that checks subprotocols must accept
// "wsguard.bearer" itself.
//
// # Observability
//
// Options.Registerer receives wsguard_middleware_handshakes_total (by
// outcome and reason), wsguard_middleware_connections_open and
// wsguard_middleware_policy_closes_total, plus the
// Redis store's metrics when it is used; no metric is labelled by client
// or user. Options.Logger receives store errors only.
//
// Runnable examples for gorilla/websocket and coder/websocket are in the
// module github.com/wsguard/wsguard/examples/gowebsocket, kept apart so
// that this module does not depend on gorilla/websocket.
package wsguard
