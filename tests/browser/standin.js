#!/usr/bin/env node
// A tiny stand-in for the miochat server, for working on the client page
// without the Rust binary. It mimics the contract the browser test relies on:
//
//   miochat-standin [--addr 127.0.0.1:0] [--token T] [--history-messages N]
//   stderr: "listening on 127.0.0.1:PORT" once bound
//   GET /, /app.js, /style.css   the three client files
//   GET /status                  {"connections": N, "last_id": N, "history": {...}}
//   GET / with Upgrade           WebSocket; 401 when --token is set and
//                                ?token= is missing or wrong; 400 for a bad ?name=
//   on open                      {"type":"welcome","message":"connected to chat"}
//   text / binary messages       relayed to every other client, not echoed
//   SIGTERM / SIGINT             close 1001 "server shutting down" to all, exit 0
//
// A client that offers the miochat.v1 subprotocol (as the page does) gets
// JSON objects instead (src/v1.rs): a welcome with epoch, last_id and name,
// each message with its id and sender, an ack for its own, and after
// ?since=N&epoch=E the messages after N, or one reset when they are gone.
// The log keeps the last --history-messages messages (default 1000).
//
// The real test runs against the real binary (MIOCHAT_BIN); this is a tool.
// Run it with:  MIOCHAT_BIN=tests/browser/standin.js node --test tests/browser
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { WebSocketServer } = require('ws');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const addr = arg('--addr', '127.0.0.1:8080');
const token = arg('--token', null);
const historyMessages = Number(arg('--history-messages', '1000'));
const SUBPROTOCOL = 'miochat.v1';
const sep = addr.lastIndexOf(':');
const host = addr.slice(0, sep);
const port = Number(addr.slice(sep + 1));
const clientDir = path.resolve(__dirname, '..', '..', 'client');
const files = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 64 * 1024,
  handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});

// The message log: { id, from, data, isBinary }, oldest first, ids counting
// up from 1 in this epoch (one per process, as in the real server).
const epoch = require('node:crypto').randomBytes(8).toString('hex');
const log = [];
let lastId = 0;
let guests = 0;
const logBytes = () => log.reduce((n, e) => n + e.data.length, 0);

const v1 = {
  welcome: (name) => JSON.stringify({ type: 'welcome', message: 'connected to chat', epoch, last_id: lastId, name }),
  message: (e) => JSON.stringify({ type: 'message', id: e.id, from: e.from,
    ...(e.isBinary ? { binary: e.data.toString('base64') } : { text: e.data.toString('utf8') }) }),
  ack: (id) => JSON.stringify({ type: 'ack', id }),
  reset: () => JSON.stringify({ type: 'reset', reason: 'history gone', last_id: lastId }),
};

// The server's rules for ?name= (src/v1.rs check_name).
function nameProblem(name) {
  const n = Array.from(name).length;
  if (n === 0 || n > 32) return 'name must be 1 to 32 characters';
  if (/\p{Cc}/u.test(name)) return 'name must not contain control characters';
  return null;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  console.error(`${req.method} ${req.url}`);
  if (req.method !== 'GET') {
    res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
  } else if (url.pathname === '/status') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify({ connections: wss.clients.size, last_id: lastId,
        history: { messages: log.length, bytes: logBytes() } }));
  } else if (files[url.pathname]) {
    const [name, type] = files[url.pathname];
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' })
      .end(fs.readFileSync(path.join(clientDir, name)));
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
});

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  if (token !== null && url.searchParams.get('token') !== token) {
    console.error('upgrade refused: missing or wrong token');
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  const name = url.searchParams.get('name');
  const problem = name === null ? null : nameProblem(name);
  const since = url.searchParams.get('since');
  if (problem !== null || (since !== null && !/^\d+$/.test(since))) {
    const reason = (problem ?? 'since must be a whole number') + '\n';
    socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Length: ${Buffer.byteLength(reason)}\r\nConnection: close\r\n\r\n${reason}`);
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://x');
  ws.v1 = ws.protocol === SUBPROTOCOL;
  ws.name = url.searchParams.get('name') ?? `guest-${++guests}`;
  console.error(`client connected as ${ws.name}${ws.v1 ? ' (miochat.v1)' : ''} (${wss.clients.size} open)`);
  if (!ws.v1) {
    ws.send(JSON.stringify({ type: 'welcome', message: 'connected to chat' }));
  } else {
    ws.send(v1.welcome(ws.name));
    const since = url.searchParams.get('since');
    if (since !== null) {
      const n = Number(since);
      const first = log.length ? log[0].id : lastId + 1;
      const held = (url.searchParams.get('epoch') ?? epoch) === epoch && n >= first - 1 && n <= lastId;
      if (held) for (const e of log) if (e.id > n) ws.send(v1.message(e));
      if (!held) ws.send(v1.reset());
    }
  }
  ws.on('message', (data, isBinary) => {
    const entry = { id: ++lastId, from: ws.name, data: Buffer.from(data), isBinary };
    log.push(entry);
    if (log.length > historyMessages) log.shift();
    if (ws.v1) ws.send(v1.ack(entry.id));
    for (const other of wss.clients) {
      if (other === ws || other.readyState !== other.OPEN) continue;
      if (other.v1) other.send(v1.message(entry));
      else other.send(data, { binary: isBinary });
    }
  });
  ws.on('close', (code) => console.error(`client closed ${code} (${wss.clients.size} open)`));
});

function shutdown(sig) {
  console.error(`${sig}: closing ${wss.clients.size} client(s) with 1001`);
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  server.close();
  setTimeout(() => process.exit(0), 200);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

server.listen(port, host, () => {
  const a = server.address();
  console.error(`listening on ${a.address}:${a.port}`);
});
