// Package flood stages connection-exhaustion attacks against a WebSocket
// server you own, and measures at the same time what a legitimate user of
// that server experiences.
//
// It is a client and nothing more: it speaks RFC 6455 over plain TCP to any
// server (wsguard, Tornado, nginx, anything) and knows nothing of wsguard's
// internals, so its figures are what an outsider would see.
//
// # Scenarios
//
// A run opens Config.Connections connections at Config.Rate per second and
// gives each one a Scenario, cycling through Config.Scenarios:
//
//   - IdleHold holds the connection and sends nothing.
//   - PingKeepalive sends a small ping every Config.PingEvery.
//   - DataKeepalive sends a one-byte text message every Config.PingEvery.
//   - IgnorePings never answers the server's pings.
//   - SlowPongs answers them Config.PongDelay late.
//   - Slowloris sends its upgrade request one header line every
//     Config.SlowlorisInterval and never finishes it.
//   - SlowReader sends Config.ReaderRequest every Config.ReaderEvery and
//     never reads, so the server's writes pile up.
//   - Churn upgrades, closes at once, and starts again, for the whole run.
//   - Oversize sends a Config.MessageSize message on open and every
//     Config.PingEvery.
//   - FragmentFlood starts a message and sends a continuation frame every
//     Config.FragmentEvery without ever finishing it.
//
// Every scenario except IgnorePings, SlowPongs and SlowReader answers the
// server's pings at once, as a client library would. Connections may come
// from many source addresses (Config.Sources), carry forged forwarding
// headers (Config.XFF) and bearer tokens (Config.Tokens).
//
// # The probe
//
// While the attack runs, a probe (Config.Probe) opens a fresh connection
// every interval from an address of its own, sends one text message, waits
// for the echo and closes. Its success rate and latency, over the run and
// per second, are what a real user would have seen.
//
// # Results
//
// Run returns a Result: attempts, upgrades, refusals by HTTP status,
// failures by kind, closes by the server's close code, a per-second series,
// the probe's figures, and the tool's own memory per held connection. A
// Result marshals to the JSON that `wsguard flood --json` writes.
//
// # Safety and cost
//
// Targets must resolve to loopback unless Config.AllowTargets names their
// range; the check happens before any packet is sent to the target. Every
// run ends by itself after Config.Duration. A held connection costs the
// tool one goroutine parked in a read, with a 128-byte buffer: about
// 4 KiB, half of it the goroutine's stack. RunProcs spreads a run over
// several processes when one process's descriptor limit is too small.
package flood
