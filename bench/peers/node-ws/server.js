'use strict';
// The classic Node `ws` broadcast chat server, kept as plain as the ws README
// examples: a Set of clients, every message sent on to every other OPEN
// client. Same contract as miochat: welcome on open, / and /chat join the
// chat, /echo echoes, GET /status -> {"connections": N}, optional heartbeat.
//
// usage: node server.js [--port 0] [--host 127.0.0.1] [--heartbeat-ms 30000]
//        node server.js --addr 127.0.0.1:8080      (as miochat's --addr; `make run-node`)
//        (PORT and HEARTBEAT_MS in the environment work too)

const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');

function opt(name, env, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1];
  return process.env[env] ?? dflt;
}

// --addr HOST:PORT, as miochat takes it, or --host and --port.
const addr = opt('addr', 'NODE_WS_ADDR', '');
const host = addr ? addr.slice(0, addr.lastIndexOf(':')) : opt('host', 'HOST', '127.0.0.1');
const port = parseInt(addr ? addr.slice(addr.lastIndexOf(':') + 1) : opt('port', 'PORT', '0'), 10);
const heartbeatMs = parseInt(opt('heartbeat-ms', 'HEARTBEAT_MS', '30000'), 10);
const WELCOME = JSON.stringify({ type: 'welcome', message: 'connected to chat' });

const clients = new Set();

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/status') {
    // miochat's first field, written as miochat writes it.
    const body = `{"connections": ${clients.size}}`;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

const chat = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
const echo = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  const wss = path === '/' || path === '/chat' ? chat : path === '/echo' ? echo : null;
  if (!wss) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

function alive() {
  this.isAlive = true;
}

chat.on('connection', (ws) => {
  ws.isAlive = true;
  ws.on('pong', alive);
  ws.on('error', () => {});
  clients.add(ws);
  ws.on('close', () => clients.delete(ws));
  ws.on('message', (data, isBinary) => {
    for (const client of clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    }
  });
  ws.send(WELCOME);
});

echo.on('connection', (ws) => {
  ws.isAlive = true;
  ws.on('pong', alive);
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.send(WELCOME);
});

// Heartbeat: ping everyone; whoever has not answered the previous ping is dropped.
const heartbeat = setInterval(() => {
  for (const wss of [chat, echo]) {
    for (const ws of wss.clients) {
      if (!ws.isAlive) {
        ws.terminate();
        continue;
      }
      ws.isAlive = false;
      ws.ping();
    }
  }
}, heartbeatMs);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    clearInterval(heartbeat);
    for (const ws of clients) ws.terminate();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}

server.listen(port, host, () => {
  const addr = server.address();
  console.log(`listening on ${addr.address}:${addr.port}`);
});
