#!/usr/bin/env python3
"""A small Tornado WebSocket service: the kind of backend wsguard protects.

Endpoints:
  /ws         echoes every text or binary message back as it arrived
  /broadcast  sends every text message to all /broadcast clients, sender too
  /healthz    plain "ok"
  /stats      JSON: open websocket connections per endpoint, closes seen per
              close code, and the number of open file descriptors
  /page       an HTML page that opens a WebSocket to /ws on its own origin
  /body       POST: streams the body in, answers {"size": N, "sha256": HEX}

Run:  app.py --port 8000 [--host 127.0.0.1] [--ping-interval 20] [--deflate]

With --deflate the websocket endpoints accept permessage-deflate (RFC 7692)
when a client offers it, and compress what they send.

Once the socket is bound it prints "listening on HOST:PORT" to stdout, so a
launcher can wait for that line (with --port 0 the line carries the port the
kernel chose). Connection opens and closes are logged to stderr as
"ws open path=..." and "ws close path=... code=...". SIGTERM or SIGINT closes
the open websockets with 1001 and exits with status 0.
"""

import argparse
import asyncio
import collections
import hashlib
import json
import logging
import os
import signal
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

log = logging.getLogger("app")

# How long shutdown waits for clients to answer our close frames.
SHUTDOWN_GRACE_SECONDS = 3.0


class Registry:
    """Open connections per endpoint and closes counted per close code."""

    def __init__(self):
        self.open = {"/ws": set(), "/broadcast": set()}
        self.closes = collections.Counter()
        self.all_closed = asyncio.Event()
        self.all_closed.set()

    def add(self, path, handler):
        self.open[path].add(handler)
        self.all_closed.clear()

    def remove(self, path, handler, close_code):
        self.open[path].discard(handler)
        self.closes["none" if close_code is None else str(close_code)] += 1
        if not any(self.open.values()):
            self.all_closed.set()

    def handlers(self):
        return [h for conns in self.open.values() for h in conns]

    def stats(self):
        return {
            "connections": {path: len(c) for path, c in self.open.items()},
            "closes": dict(self.closes),
            "open_fds": len(os.listdir("/proc/self/fd")),
        }


def drop_write_error(future):
    """Retrieves a failed write's exception so asyncio does not log it."""
    if not future.cancelled():
        future.exception()


class BaseSocket(tornado.websocket.WebSocketHandler):
    path = ""

    def initialize(self, registry):
        self.registry = registry

    def check_origin(self, origin):
        # Any Origin is fine here: this service only runs behind wsguard,
        # and the proxy is where origins are checked (allowed_origins).
        return True

    def get_compression_options(self):
        # None turns permessage-deflate off; {} accepts it with Tornado's
        # defaults when the client offers it.
        return {} if self.settings.get("deflate") else None

    def select_subprotocol(self, subprotocols):
        # Speak whatever the client asks for first, so tests can see that
        # Sec-WebSocket-Protocol survives the trip through the proxy.
        return subprotocols[0] if subprotocols else None

    def open(self):
        self.registry.add(self.path, self)
        log.info(
            "ws open path=%s peer=%s subprotocol=%s",
            self.path,
            self.request.remote_ip,
            self.selected_subprotocol,
        )

    def on_close(self):
        self.registry.remove(self.path, self, self.close_code)
        log.info(
            "ws close path=%s code=%s reason=%r",
            self.path,
            self.close_code,
            self.close_reason or "",
        )


class EchoSocket(BaseSocket):
    path = "/ws"

    async def on_message(self, message):
        # Awaiting the write means Tornado reads the next message only after
        # this one went out, so a client that never reads cannot make us
        # queue replies without bound.
        try:
            await self.write_message(message, binary=isinstance(message, bytes))
        except tornado.websocket.WebSocketClosedError:
            pass


class BroadcastSocket(BaseSocket):
    path = "/broadcast"

    def on_message(self, message):
        if isinstance(message, bytes):
            return
        for client in list(self.registry.open[self.path]):
            try:
                client.write_message(message).add_done_callback(drop_write_error)
            except tornado.websocket.WebSocketClosedError:
                pass


class HealthHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write("ok")


PAGE = """<!doctype html>
<title>wsguard example</title>
<p id="status">connecting</p>
<script>
const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
ws.onopen = () => ws.send("hello");
ws.onmessage = (e) => { document.getElementById("status").textContent = "echo: " + e.data; };
</script>
"""


class PageHandler(tornado.web.RequestHandler):
    """Serves a page from the same origin as its WebSocket, for
    http: passthrough."""

    def get(self):
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(PAGE)


@tornado.web.stream_request_body
class BodyHandler(tornado.web.RequestHandler):
    """Reads a POST body as it streams in and answers its length and
    SHA-256, so a test can check that a proxied body arrived whole."""

    def prepare(self):
        self.size = 0
        self.digest = hashlib.sha256()

    def data_received(self, chunk):
        self.size += len(chunk)
        self.digest.update(chunk)

    def post(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"size": self.size, "sha256": self.digest.hexdigest()}))


class StatsHandler(tornado.web.RequestHandler):
    def initialize(self, registry):
        self.registry = registry

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(self.registry.stats()))


def make_app(registry, ping_interval, deflate=False):
    deps = {"registry": registry}
    return tornado.web.Application(
        [
            (r"/ws", EchoSocket, deps),
            (r"/broadcast", BroadcastSocket, deps),
            (r"/healthz", HealthHandler),
            (r"/stats", StatsHandler, deps),
            (r"/page", PageHandler),
            (r"/body", BodyHandler),
        ],
        websocket_ping_interval=ping_interval,
        deflate=deflate,
    )


def parse_args(argv):
    p = argparse.ArgumentParser(description="Tornado WebSocket example app.")
    p.add_argument("--port", type=int, required=True, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--ping-interval",
        type=float,
        default=None,
        help="seconds between server pings (default: no pings)",
    )
    p.add_argument(
        "--deflate",
        action="store_true",
        help="accept permessage-deflate (default: off)",
    )
    return p.parse_args(argv)


async def serve(args):
    registry = Registry()
    app = make_app(registry, args.ping_interval or None, args.deflate)
    sockets = tornado.netutil.bind_sockets(args.port, address=args.host)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    port = sockets[0].getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"listening on {host}:{port}", flush=True)

    await stop.wait()
    log.info("shutting down, closing %d websockets", len(registry.handlers()))
    server.stop()
    for handler in registry.handlers():
        handler.close(1001, "server shutting down")
    try:
        await asyncio.wait_for(registry.all_closed.wait(), SHUTDOWN_GRACE_SECONDS)
    except asyncio.TimeoutError:
        log.warning("%d websockets did not close in time", len(registry.handlers()))
    log.info("stopped")


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
