#!/usr/bin/env python3
"""One WebSocket session with a real Python client library, for wsguard's
real-client tests.

Usage: realclient.py websockets|tornado SPEC

SPEC is JSON: {"url": ..., "protocols": [...], "headers": {...},
"messages": [...], "deflate": true}, and for the websockets library
optionally "ca_file" (a PEM file of the roots a wss:// server must chain
to) and "local" (the source address). The client offers the protocols
and, with "deflate", permessage-deflate; it sends the headers with the
upgrade, sends each message as text and checks that its echo equals it,
then closes with 1000. It prints one JSON line:

  {"subprotocol": "...", "extensions": "...", "echoed": N,
   "close_code": 1000, "error": ""}

"extensions" is the Sec-WebSocket-Extensions header of the server's 101
answer. On failure "error" says what went wrong and the exit status is 1.
Written for Debian 12's websockets 10.4 and Tornado 6.2.
"""

import asyncio
import json
import ssl
import sys

TIMEOUT = 20


async def with_websockets(spec, report):
    import websockets

    extra = {}
    if spec.get("ca_file"):
        extra["ssl"] = ssl.create_default_context(cafile=spec["ca_file"])
    if spec.get("local"):
        extra["local_addr"] = (spec["local"], 0)
    ws = await websockets.connect(
        spec["url"],
        subprotocols=spec["protocols"] or None,
        extra_headers=spec["headers"],
        compression="deflate" if spec["deflate"] else None,
        max_size=None,
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        ping_interval=None,
        **extra,
    )
    report["subprotocol"] = ws.subprotocol or ""
    report["extensions"] = ws.response_headers.get("Sec-WebSocket-Extensions", "")
    for msg in spec["messages"]:
        await ws.send(msg)
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        if got != msg:
            raise ValueError(f"echo of a {len(msg)}-character message differs")
        report["echoed"] += 1
    await ws.close(1000)
    report["close_code"] = ws.close_code


async def with_tornado(spec, report):
    import tornado.httpclient
    import tornado.websocket

    req = tornado.httpclient.HTTPRequest(
        spec["url"], headers=spec["headers"], connect_timeout=TIMEOUT, request_timeout=TIMEOUT
    )
    conn = await tornado.websocket.websocket_connect(
        req,
        subprotocols=spec["protocols"] or None,
        compression_options={} if spec["deflate"] else None,
        max_message_size=64 << 20,
    )
    report["subprotocol"] = conn.selected_subprotocol or ""
    report["extensions"] = conn.headers.get("Sec-WebSocket-Extensions", "")
    for msg in spec["messages"]:
        await conn.write_message(msg)
        got = await asyncio.wait_for(conn.read_message(), TIMEOUT)
        if got != msg:
            raise ValueError(f"echo of a {len(msg)}-character message differs")
        report["echoed"] += 1
    conn.close(1000)
    # read_message answers None once the server's close frame is in.
    while await asyncio.wait_for(conn.read_message(), TIMEOUT) is not None:
        pass
    report["close_code"] = conn.close_code


def main(argv):
    lib, spec = argv[1], json.loads(argv[2])
    run = {"websockets": with_websockets, "tornado": with_tornado}[lib]
    report = {"subprotocol": "", "extensions": "", "echoed": 0, "close_code": 0, "error": ""}
    status = 0
    try:
        asyncio.run(run(spec, report))
    except Exception as e:  # reported to the test, which fails with it
        report["error"] = f"{type(e).__name__}: {e}"
        status = 1
    print(json.dumps(report), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
