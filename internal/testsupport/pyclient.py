#!/usr/bin/env python3
"""Echo check with the Python websockets library, a client independent of Go.

Usage: pyclient.py URI --count N [--size BYTES] [--subprotocol X] [--cafile PEM]

Connects to URI, sends N distinct text messages of BYTES characters one at a
time, checks that each echo equals what was sent, then closes with 1000. It
prints one JSON line to stdout:

  {"sent": N, "echoed": N, "close_code": 1000, "subprotocol": "X"}

On any failure it prints the same line with an "error" field (and "status"
when the handshake got an HTTP status other than 101), writes the error to
stderr and exits 1. Written for websockets 10.4.
"""

import argparse
import asyncio
import json
import ssl
import sys

import websockets
import websockets.exceptions


def message(i, size):
    """Returns the i-th message: its index, then filler up to size chars."""
    head = f"{i}:"
    filler = "abcdefghijklmnopqrstuvwxyz0123456789"
    body = head + filler * (size // len(filler) + 1)
    return body[:size]


async def run(args, summary):
    subprotocols = [args.subprotocol] if args.subprotocol else None
    extra = {}
    if args.cafile:
        # wss:// verified against the given CAs only.
        extra["ssl"] = ssl.create_default_context(cafile=args.cafile)
    ws = await websockets.connect(
        args.uri,
        **extra,
        subprotocols=subprotocols,
        open_timeout=args.timeout,
        close_timeout=args.timeout,
        max_size=max(args.size * 2, 2**20),
        ping_interval=None,
    )
    summary["subprotocol"] = ws.subprotocol
    try:
        for i in range(args.count):
            sent = message(i, args.size)
            await ws.send(sent)
            summary["sent"] += 1
            got = await asyncio.wait_for(ws.recv(), args.timeout)
            if got != sent:
                raise ValueError(
                    f"echo {i} differs: sent {len(sent)} chars {sent[:40]!r}, "
                    f"got {len(got)} {type(got).__name__} {got[:40]!r}"
                )
            summary["echoed"] += 1
        await ws.close(code=1000)
    finally:
        summary["close_code"] = ws.close_code
        await ws.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("uri")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--size", type=int, default=32, help="characters per message")
    p.add_argument("--subprotocol", default="")
    p.add_argument("--cafile", default="", help="PEM CAs to verify a wss server with")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    args = p.parse_args(argv)
    if args.count < 0:
        p.error("--count must not be negative")
    if args.count > 0 and args.size < len(f"{args.count - 1}:"):
        p.error(f"--size {args.size} is too small for {args.count} distinct messages")

    summary = {"sent": 0, "echoed": 0, "close_code": None, "subprotocol": None}
    code = 0
    try:
        asyncio.run(run(args, summary))
    except Exception as e:  # any failure is reported the same way
        if isinstance(e, websockets.exceptions.InvalidStatusCode):
            summary["status"] = e.status_code
        summary["error"] = f"{type(e).__name__}: {e or 'timed out'}"
        print(f"pyclient: {summary['error']}", file=sys.stderr)
        code = 1
    print(json.dumps(summary), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
