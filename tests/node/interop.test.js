// Interop: the Node.js `ws` client (the library the seed tutorial uses) against
// the real miochat binary. Run by `make test` as `cd tests/node && node --test`.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const WebSocket = require('ws');

const REPO = path.resolve(__dirname, '..', '..');
const BIN = path.resolve(REPO, process.env.MIOCHAT_BIN || 'target/debug/miochat');
const DEADLINE_MS = 10_000;

/** Starts the server on an ephemeral port; resolves once it prints its address. */
function startServer() {
  const child = spawn(BIN, ['--addr', '127.0.0.1:0'], { env: { ...process.env, RUST_LOG: 'info' } });
  let log = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address in the log:\n${log}`)), DEADLINE_MS);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const match = /listening on (127\.0\.0\.1:\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('error', reject);
  });
  return { child, ready, log: () => log };
}

/** Resolves with the next message (as text) a socket receives. */
function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message in time')), DEADLINE_MS);
    ws.once('message', (data, isBinary) => {
      clearTimeout(timer);
      resolve(isBinary ? data : data.toString());
    });
  });
}

async function waitFor(condition, what) {
  const end = Date.now() + DEADLINE_MS;
  while (Date.now() < end) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('the ws client connects, chats and closes with 1000', async (t) => {
  const server = startServer();
  t.after(() => server.child.kill('SIGKILL'));
  const addr = await server.ready;
  try {
    const a = new WebSocket(`ws://${addr}/`);
    const aWelcome = nextMessage(a);
    const b = new WebSocket(`ws://${addr}/chat`);
    const bWelcome = nextMessage(b);
    assert.deepEqual(JSON.parse(await aWelcome), { type: 'welcome', message: 'connected to chat' });
    assert.deepEqual(JSON.parse(await bWelcome), { type: 'welcome', message: 'connected to chat' });

    const toB = nextMessage(b);
    a.send('hello from node ws');
    assert.equal(await toB, 'hello from node ws');

    const toA = nextMessage(a);
    b.send(Buffer.from([1, 2, 3]));
    assert.deepEqual([...(await toA)], [1, 2, 3]);

    const closed = new Promise((resolve) => a.once('close', (code, reason) => resolve([code, reason.toString()])));
    a.close(1000, 'done here');
    assert.deepEqual(await closed, [1000, '']);
    await waitFor(() => /closed by peer, code 1000 "done here"; 1 open/.test(server.log()), 'the close in the log');
    b.terminate();
    await waitFor(() => /connection lost, code 1006/.test(server.log()), 'the 1006 in the log');
  } catch (error) {
    console.error(`---- server log ----\n${server.log()}`);
    throw error;
  }
});

test('the ws client sees 1009 for a message over the limit', async (t) => {
  const server = startServer();
  t.after(() => server.child.kill('SIGKILL'));
  const addr = await server.ready;
  const ws = new WebSocket(`ws://${addr}/echo`);
  await new Promise((resolve) => ws.once('open', resolve));
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(Buffer.alloc(2 * 1024 * 1024));
  assert.equal(await closed, 1009);
});

test('the ws client that offers miochat.v1 gets it echoed and JSON objects', async (t) => {
  const server = startServer();
  t.after(() => server.child.kill('SIGKILL'));
  const addr = await server.ready;
  const ws = new WebSocket(`ws://${addr}/?name=${encodeURIComponent('node ws')}`, ['miochat.v1']);
  t.after(() => ws.terminate());
  const welcome = nextMessage(ws);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  assert.equal(ws.protocol, 'miochat.v1', 'the server picked the offered subprotocol');
  const w = JSON.parse(await welcome);
  assert.equal(typeof w.epoch, 'string');
  assert.deepEqual({ ...w, epoch: '…' },
    { type: 'welcome', message: 'connected to chat', epoch: '…', last_id: 0, name: 'node ws' });
  const ack = nextMessage(ws);
  ws.send('first words');
  assert.deepEqual(JSON.parse(await ack), { type: 'ack', id: 1 });
});
