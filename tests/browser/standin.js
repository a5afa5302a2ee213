#!/usr/bin/env node
// A tiny stand-in for the miochat server, for working on the client page
// without the Rust binary. It mimics the contract the browser test relies on:
//
//   miochat-standin [--addr 127.0.0.1:0] [--token T]
//   stderr: "listening on 127.0.0.1:PORT" once bound
//   GET /, /app.js, /style.css   the three client files
//   GET /status                  {"connections": N}
//   GET / with Upgrade           WebSocket; 401 when --token is set and
//                                ?token= is missing or wrong
//   on open                      {"type":"welcome","message":"connected to chat"}
//   text / binary messages       relayed to every other client, not echoed
//   SIGTERM / SIGINT             close 1001 "server shutting down" to all, exit 0
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
const sep = addr.lastIndexOf(':');
const host = addr.slice(0, sep);
const port = Number(addr.slice(sep + 1));
const clientDir = path.resolve(__dirname, '..', '..', 'client');
const files = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  console.error(`${req.method} ${req.url}`);
  if (req.method !== 'GET') {
    res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
  } else if (url.pathname === '/status') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify({ connections: wss.clients.size }));
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
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws) => {
  console.error(`client connected (${wss.clients.size} open)`);
  ws.send(JSON.stringify({ type: 'welcome', message: 'connected to chat' }));
  ws.on('message', (data, isBinary) => {
    for (const other of wss.clients) {
      if (other !== ws && other.readyState === other.OPEN) other.send(data, { binary: isBinary });
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
