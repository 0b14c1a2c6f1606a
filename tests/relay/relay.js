// A GUN relay speaking the HTTP contract of DESIGN.md, backed by a real GUN database (the `gun`
// npm package with its radisk storage), for oip-resolver's interop test.
//
//   GET  /get?soul=S   -> 200 {"success":true,"data":{node}} with `data`/`oip` strings parsed,
//                         404 {"error":"Not found"} after MISS_WAIT_MS, 400 without `soul`
//   POST /put          -> body {"soul":S,"data":{node}} -> 200 {"success":true,"soul":S}
//   GET  /stats        -> {"gets":{soul:count}}: what the service actually asked for
//   ws   /gun          -> GUN's own websocket, as the production relay serves it (peers sync here)
//
// Usage: node relay.js <storage dir>
//   PORT          default 0 = any free port
//   MISS_WAIT_MS  default 3000
//   PEERS         comma-separated GUN peers (http://host:port/gun) to sync with
//   TLS_CERT, TLS_KEY  PEM files: serve HTTPS instead of HTTP
// Prints "listening on http(s)://127.0.0.1:<port>" once it accepts requests.

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');

// GUN greets on start-up; keep stdout for the one line the test reads.
const log = console.log;
console.log = (...args) => process.stderr.write(args.join(' ') + '\n');
const Gun = require('gun');

const storage = process.argv[2] || path.join(__dirname, 'radata');
const missWait = Number(process.env.MISS_WAIT_MS || 3000);
const peers = (process.env.PEERS || '').split(',').filter(Boolean);
const tls = process.env.TLS_CERT && process.env.TLS_KEY
  ? { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) }
  : null;
const gets = {};

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// What the relay does to a stored node before answering: `data` and `oip` back into objects.
function relayView(node) {
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '_') continue;
    if ((k === 'data' || k === 'oip') && typeof v === 'string') {
      try { out[k] = JSON.parse(v); continue; } catch (e) { /* keep the string */ }
    }
    out[k] = v;
  }
  return out;
}

function get(soul, res) {
  gets[soul] = (gets[soul] || 0) + 1;
  gun.get(soul).once((node) => {
    if (node !== undefined && node !== null) {
      return send(res, 200, { success: true, data: relayView(node) });
    }
    // A miss is only certain after waiting for peers and disk: the production relay's ~3 s.
    setTimeout(() => send(res, 404, { error: 'Not found' }), missWait);
  });
}

function put(req, res) {
  let body = '';
  req.on('data', (chunk) => { body += chunk; if (body.length > 1 << 20) req.destroy(); });
  req.on('end', () => {
    let parsed;
    try { parsed = JSON.parse(body); } catch (e) { return send(res, 400, { error: 'body is not JSON' }); }
    if (typeof parsed.soul !== 'string' || typeof parsed.data !== 'object' || parsed.data === null) {
      return send(res, 400, { error: 'soul and data required' });
    }
    gun.get(parsed.soul).put(parsed.data, (ack) => {
      if (ack.err) send(res, 500, { error: String(ack.err) });
      else send(res, 200, { success: true, soul: parsed.soul });
    });
  });
}

function handle(req, res) {
  const url = new URL(req.url, 'http://relay');
  if (req.method === 'GET' && url.pathname === '/get') {
    const soul = url.searchParams.get('soul');
    if (!soul) return send(res, 400, { error: 'soul required' });
    return get(soul, res);
  }
  if (req.method === 'POST' && url.pathname === '/put') return put(req, res);
  if (req.method === 'GET' && url.pathname === '/stats') return send(res, 200, { gets });
  send(res, 404, { error: 'no such route' });
}

const server = tls ? https.createServer(tls, handle) : http.createServer(handle);
// GUN answers its websocket at /gun on the same server, and syncs with PEERS through it.
// AXE=1: GUN's AXE routing, as older relays ran it: writes reach only peers that asked for the soul.
const gun = Gun({ web: server, file: storage, localStorage: false, multicast: false, axe: process.env.AXE === '1', peers });

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  log(`listening on ${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`);
});
