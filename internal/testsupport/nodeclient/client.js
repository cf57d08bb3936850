// One WebSocket session with Node's ws package, for wsguard's real-client
// tests; the same contract as ../realclients/realclient.py.
//
// Usage: node client.js SPEC
//
// SPEC is JSON: {"url", "protocols", "headers", "messages", "deflate"}.
// The client offers the protocols and, with deflate, permessage-deflate;
// it sends each message as text and checks its echo, then closes with 1000. It prints one JSON
// line: {"subprotocol", "extensions", "echoed", "close_code", "error"}.
'use strict';

const WebSocket = require('ws');

const TIMEOUT_MS = 20000;

function main() {
  const spec = JSON.parse(process.argv[2]);
  const report = { subprotocol: '', extensions: '', echoed: 0, close_code: 0, error: '' };
  let done = false;
  const finish = (error) => {
    if (done) return;
    done = true;
    if (error) report.error = String(error);
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exitCode = error ? 1 : 0;
    clearTimeout(timer);
  };
  const timer = setTimeout(() => {
    finish('timed out');
    ws.terminate();
  }, TIMEOUT_MS);

  const ws = new WebSocket(spec.url, spec.protocols, {
    headers: spec.headers,
    perMessageDeflate: spec.deflate,
    maxPayload: 64 << 20,
  });
  ws.on('upgrade', (res) => {
    report.extensions = res.headers['sec-websocket-extensions'] || '';
  });
  let next = 0;
  ws.on('open', () => {
    report.subprotocol = ws.protocol;
    ws.send(spec.messages[next]);
  });
  ws.on('message', (data, isBinary) => {
    const want = spec.messages[next];
    if (isBinary || data.toString() !== want) {
      finish(`echo of a ${want.length}-character message differs`);
      ws.terminate();
      return;
    }
    report.echoed++;
    next++;
    if (next < spec.messages.length) {
      ws.send(spec.messages[next]);
    } else {
      ws.close(1000);
    }
  });
  ws.on('unexpected-response', (req, res) => finish(`handshake answered ${res.statusCode}`));
  ws.on('error', (err) => finish(err.message));
  ws.on('close', (code) => {
    report.close_code = code;
    finish(next < spec.messages.length ? `closed with ${code} after ${next} echoes` : '');
  });
}

main();
