// Package testsupport starts the real processes that wsguard's tests talk
// to, the Tornado example backend, redis-server, nginx, HAProxy and
// wsguard serve itself, on free loopback ports, and stops them when the
// test ends; and it drives headless Chromium. It is imported by tests
// only.
//
// # Dependencies
//
// The processes need Debian packages: python3-tornado, python3-websockets,
// redis-server (with redis-cli), nginx, haproxy, chromium, prometheus
// (promtool) and systemd (systemd-analyze); the Node client needs node and
// `npm ci` in nodeclient/.
// When one is missing the test is skipped with the reason, or, when
// WSGUARD_REQUIRE_DEPS=1 (as in CI), fails and says how to install it.
// See [Require].
//
// # Processes
//
// [StartTornado], [StartRedis] and [StartNginx] return a [Process] once it
// is ready to serve: Tornado has printed its "listening on" line, Redis has
// answered PING, nginx has written its pid file (which it does once its
// sockets are bound) and accepts connections. [StartRedisCluster] starts
// several cluster-enabled redis-servers, joins them with redis-cli and
// waits for cluster_state:ok on every node. Processes are stopped by
// t.Cleanup, and their combined stdout and stderr are written to the test
// log if the test failed. Readiness is always an observed event, never a
// fixed delay. [StartHAProxy] checks its configuration with haproxy -c
// and waits until HAProxy accepts connections. [StartWSGuard] runs
// `wsguard serve` on a config file, built once per test binary by
// [WSGuardBinary] (call [RunTests] from TestMain to remove the binary),
// and waits for its "wsguard listening" line. [NewTestCert] makes a
// self-signed certificate for the proxies' TLS.
//
//	backend := testsupport.StartTornado(t)
//	conn, _, err := websocket.Dial(ctx, backend.WSURL("/ws"), nil)
//
// # Python client
//
// [PyEcho] and [RunPyClient] drive pyclient.py, an echo check written with
// the Python websockets library, so a proxy is also exercised by a client
// that shares no code with the Go tests. realclients/realclient.py (Python
// websockets or Tornado's client) and nodeclient/client.js (Node's ws) run
// one session each for the real-client tests of examples/tornado.
//
// # Browser
//
// [DumpDOM] loads a page in headless Chromium and returns the DOM once the
// page has loaded, for tests of what only a browser does, such as offering
// a token as a WebSocket subprotocol. [StartChromium] keeps the browser
// running and drives it over the DevTools protocol, for pages that must be
// watched while they update themselves: [Browser.Open] a tab, then poll
// [Page.Eval].
package testsupport
