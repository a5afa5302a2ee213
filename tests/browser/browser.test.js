// End-to-end test of the miochat browser client: Debian's Chromium, driven by
// playwright-core, against the real server binary on loopback.
//
//   MIOCHAT_BIN   server binary, relative to the repo top unless absolute
//                 (default target/debug/miochat)
//   CHROMIUM      browser binary (default /usr/bin/chromium)
//
// Screenshots land in target/browser/. Every wait is for a condition with a
// deadline, never a fixed sleep. A failing scenario prints the server's log
// and the pages' consoles.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { chromium } = require('playwright-core');
const WebSocket = require('ws');

const REPO = path.resolve(__dirname, '..', '..');
const BIN = path.resolve(REPO, process.env.MIOCHAT_BIN || 'target/debug/miochat');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(REPO, 'target', 'browser');
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Deadlines: generous, because CI has two cores and a debug build.
const T_START = 20_000;    // server prints "listening on"
const T_CONNECT = 15_000;  // page reaches "connected"
const T_MSG = 10_000;      // a message crosses
const T_RECONNECT = 40_000; // backoff is capped at 10 s, so two rounds fit
const T_EXIT = 15_000;     // server exits after SIGTERM

// --- the server under test ---------------------------------------------------

const live = new Set(); // every server process not yet seen to exit

class Server {
  constructor(args) {
    this.args = args;
    this.log = [];
    this.port = null;
    this.exited = null; // {code, signal} once it exited
    this.proc = spawn(BIN, args, {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
    });
    live.add(this);
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exited = { code, signal };
        live.delete(this);
        this.note(`[exited: code=${code} signal=${signal}]`);
        resolve(this.exited);
      });
      this.proc.on('error', (e) => {
        this.exited = { code: null, signal: null, error: e };
        live.delete(this);
        this.note(`[spawn failed: ${e.message}]`);
        resolve(this.exited);
      });
    });
    this.listening = new Promise((resolve, reject) => {
      let buf = '';
      this.proc.stderr.setEncoding('utf8');
      this.proc.stderr.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.note(line);
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
          if (m && this.port === null) {
            this.port = Number(m[1]);
            resolve(this.port);
          }
        }
      });
      this.proc.stdout.setEncoding('utf8');
      this.proc.stdout.on('data', (c) => c.split('\n').filter(Boolean).forEach((l) => this.note('stdout: ' + l)));
      this.exitPromise.then((e) => reject(new Error(
        `server exited before "listening on 127.0.0.1:PORT" (code=${e.code} signal=${e.signal}` +
        (e.error ? ` error=${e.error.message}` : '') + ')')));
      setTimeout(() => reject(new Error(`no "listening on 127.0.0.1:PORT" on stderr within ${T_START} ms`)), T_START).unref();
    });
    this.listening.catch(() => {}); // awaited by start(); avoid an unhandled rejection
  }

  note(line) {
    this.log.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  }

  // Start a server and wait for its port. With a fixed port, retry the bind
  // for a while: the previous server on it may have just died.
  static async start({ port = 0, token = null, retryForMs = 0, extra = [] } = {}) {
    const args = ['--addr', `127.0.0.1:${port}`, ...extra];
    if (token !== null) args.push('--token', token);
    const deadline = Date.now() + retryForMs;
    const failed = [];
    for (;;) {
      const s = new Server(args);
      try {
        await s.listening;
        s.failedBefore = failed;
        return s;
      } catch (e) {
        s.kill('SIGKILL');
        await s.exitPromise;
        failed.push(s);
        if (Date.now() >= deadline) {
          e.message += '\n' + failed.map((f) => f.log.join('\n')).join('\n---\n');
          throw e;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  kill(signal) {
    if (!this.exited) this.proc.kill(signal);
  }

  async waitExit(ms) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`server did not exit within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([this.exitPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }
}

function killAll() {
  for (const s of live) s.kill('SIGKILL');
}
process.on('exit', killAll);

// --- the browser -------------------------------------------------------------

let browser;

// Each scenario gets fresh tabs, its own servers, and a log of everything
// that happened, printed only if it fails.
function scenario(name, body) {
  it(name, { timeout: 180_000 }, async () => {
    const ctx = {
      servers: [],
      pages: [],
      contexts: [],
      consoleLog: [],
      pageErrors: [],
      async server(opts) {
        const s = await Server.start(opts);
        this.servers.push(s, ...s.failedBefore);
        return s;
      },
      // Each tab gets a browser context (a window) of its own: two tabs of
      // one window would leave one in the background, where Chromium runs
      // timers and animation frames at 1 Hz and every click takes seconds.
      // storage: localStorage entries the page finds when it first loads.
      async page(url, name, { storage = {} } = {}) {
        const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
        this.contexts.push(context);
        await context.addInitScript((entries) => {
          for (const [k, v] of Object.entries(entries)) if (localStorage.getItem(k) === null) localStorage.setItem(k, v);
        }, storage);
        const page = await context.newPage();
        page.on('console', (m) => this.consoleLog.push(`[${name}] ${m.type()}: ${m.text()}`));
        page.on('pageerror', (e) => this.pageErrors.push(`[${name}] ${e.stack || e.message}`));
        await page.goto(url);
        this.pages.push(page);
        return page;
      },
    };
    try {
      await body(ctx);
      assert.deepEqual(ctx.pageErrors, [], 'uncaught errors in the page');
    } catch (e) {
      for (const [i, s] of ctx.servers.entries()) {
        console.error(`\n----- server ${i + 1} (${s.args.join(' ')}) log -----\n${s.log.join('\n')}`);
      }
      console.error(`\n----- page consoles -----\n${ctx.consoleLog.join('\n')}`);
      for (const p of ctx.pages) {
        const text = await p.evaluate(() => document.querySelector('.app').innerText).catch(() => '(page gone)');
        console.error(`\n----- ${p.url()} shows -----\n${text}`);
      }
      throw e;
    } finally {
      for (const c of ctx.contexts) await c.close().catch(() => {});
      for (const s of ctx.servers) s.kill('SIGKILL');
    }
  });
}

// --- what a page shows -------------------------------------------------------

const state = (page) => page.getAttribute('#state', 'data-state');

function waitState(page, want, timeout = T_CONNECT) {
  return page.waitForSelector(`#state[data-state="${want}"]`, { state: 'attached', timeout });
}

function waitCloseCode(page, code, timeout = T_CONNECT) {
  return page.waitForSelector(`#close-info[data-code="${code}"]`, { state: 'visible', timeout });
}

// Wait until the log has a line of this direction ('in', 'out', 'sys', 'err')
// whose text is exactly `text`.
function waitLine(page, dir, text, timeout = T_MSG) {
  return page.waitForFunction(
    ([d, t]) => [...document.querySelectorAll(`#log li[data-dir="${d}"] .text`)].some((e) => e.textContent === t),
    [dir, text],
    { timeout, polling: 50 },
  );
}

// Like waitLine, for a text that matches a regular expression.
function waitLineMatching(page, dir, re, timeout = T_MSG) {
  return page.waitForFunction(
    ([d, src, flags]) => [...document.querySelectorAll(`#log li[data-dir="${d}"] .text`)]
      .some((e) => new RegExp(src, flags).test(e.textContent)),
    [dir, re.source, re.flags],
    { timeout, polling: 50 },
  );
}

function lines(page, dir) {
  return page.$$eval(`#log li[data-dir="${dir}"] .text`, (els) => els.map((e) => e.textContent));
}

// The chat lines (→ and ←) as "from: text", in order; own lines end in
// " [state]" (pending, acked, unsure).
function chat(page) {
  return page.$$eval('#log li.chat', (els) => els.map((li) => `${li.dataset.from}: ${li.querySelector('.text').textContent}` +
    (li.dataset.dir === 'out' ? ` [${li.dataset.state}]` : '')));
}

// Wait until every own line is acked, and return how many there are.
async function waitAllAcked(page, timeout = T_MSG) {
  await page.waitForFunction(() => document.querySelectorAll('#log li[data-dir="out"]:not([data-state="acked"])').length === 0,
    null, { timeout, polling: 50 });
  return page.$$eval('#log li[data-dir="out"]', (els) => els.length);
}

// The name the server gave a tab, from its welcome line.
async function welcomedAs(page, timeout = T_CONNECT) {
  await waitLineMatching(page, 'sys', /^welcome: connected to chat as /, timeout);
  const all = await lines(page, 'sys');
  return all.filter((t) => t.startsWith('welcome: ')).pop().replace('welcome: connected to chat as ', '');
}

// Choose a name in the page's name field, as a user would: type, Enter.
async function chooseName(page, name) {
  await page.fill('#name', '');
  await page.click('#name');
  await page.keyboard.type(name);
  await page.keyboard.press('Enter');
}

// Type with real key events, then click Send.
async function typeAndClickSend(page, text) {
  await page.click('#input');
  await page.keyboard.type(text);
  await page.click('#send');
}

async function typeAndPressEnter(page, text) {
  await page.click('#input');
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

// One tab says something and the other sees it.
async function say(page, other, text) {
  await typeAndPressEnter(page, text);
  await waitLine(other, 'in', text);
}

function waitConnections(page, n, timeout = T_MSG) {
  return page.waitForSelector(`#connections[data-count="${n}"]`, { state: 'attached', timeout });
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name) });
}

// One picture of several tabs side by side (each at the size it has now),
// laid out by a page of their screenshots.
async function shotSideBySide(pages, name) {
  const images = await Promise.all(pages.map((p) => p.screenshot()));
  const sizes = await Promise.all(pages.map((p) => p.viewportSize()));
  const gap = 14;
  const width = sizes.reduce((w, s) => w + s.width, 0) + gap * (pages.length + 1);
  const height = Math.max(...sizes.map((s) => s.height)) + 2 * gap;
  const context = await browser.newContext({ viewport: { width, height } });
  try {
    const page = await context.newPage();
    const imgs = images.map((b) => `<img src="data:image/png;base64,${b.toString('base64')}">`).join('');
    await page.setContent(`<style>body{margin:0;padding:${gap}px;display:flex;gap:${gap}px;background:#c9d1d9}` +
      'img{display:block;border-radius:8px;box-shadow:0 2px 10px #0003}</style>' + imgs);
    await page.waitForFunction(() => [...document.images].every((i) => i.complete));
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, name) });
  } finally {
    await context.close();
  }
}

// A raw HTTP upgrade request, to see what the server answers before any
// browser gets involved. Resolves { status, headers }.
function rawUpgrade(port, pathAndQuery) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: pathAndQuery,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.setTimeout(T_MSG, () => req.destroy(new Error('no answer to the upgrade request')));
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode, headers: res.headers });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode, headers: res.headers });
    });
    req.on('error', reject);
    req.end();
  });
}

// --- scenarios ---------------------------------------------------------------

describe('miochat in Chromium', () => {
  before(async () => {
    assert.ok(fs.existsSync(BIN), `server binary ${BIN} is missing: build it (cargo build) or set MIOCHAT_BIN`);
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (tests/browser/run.sh does)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    if (browser) await browser.close();
    killAll();
  });

  scenario('the server serves the three client files and /status', async (ctx) => {
    const s = await ctx.server();
    const want = {
      '/': ['index.html', /^text\/html\b/],
      '/app.js': ['app.js', /^(text|application)\/javascript\b/],
      '/style.css': ['style.css', /^text\/css\b/],
    };
    for (const [p, [file, type]] of Object.entries(want)) {
      const res = await fetch(s.base + p);
      assert.equal(res.status, 200, `GET ${p}`);
      assert.match(res.headers.get('content-type') || '', type, `content type of GET ${p}`);
      const body = await res.text();
      const disk = fs.readFileSync(path.join(REPO, 'client', file), 'utf8');
      assert.ok(body === disk, `GET ${p} is not client/${file} as on disk: the binary embeds an older copy, rebuild it`);
    }
    const res = await fetch(s.base + '/status');
    assert.equal(res.status, 200, 'GET /status');
    assert.match(res.headers.get('content-type') || '', /^application\/json\b/, 'content type of GET /status');
    // connections, sse and long_poll add up to what the page shows; last_id
    // and history describe the shared message log (nothing said yet on a
    // fresh server).
    assert.deepEqual(await res.json(), {
      connections: 0, sse: 0, long_poll: 0, last_id: 0, history: { messages: 0, bytes: 0 },
    });
  });

  scenario('two tabs chat: sent shows as →, received as ←, never echoed', async (ctx) => {
    const s = await ctx.server();
    const a = await ctx.page(s.base + '/', 'A');
    const b = await ctx.page(s.base + '/', 'B');
    await Promise.all([waitState(a, 'connected'), waitState(b, 'connected')]);

    // The welcome is a system line with the name the server gave (a guest
    // name: none was chosen), not a chat line with raw JSON.
    const nameA = await welcomedAs(a);
    const nameB = await welcomedAs(b);
    assert.match(nameA, /^guest-\d+$/);
    assert.match(nameB, /^guest-\d+$/);
    assert.notEqual(nameA, nameB);
    for (const p of [a, b]) {
      assert.deepEqual(await lines(p, 'in'), [], 'the welcome must not show as a received chat line');
    }
    assert.equal(await a.getAttribute('#name', 'placeholder'), nameA, 'the name field shows the guest name');
    // /status is polled: both tabs see two connections.
    await Promise.all([waitConnections(a, 2), waitConnections(b, 2)]);

    // A types with real key events and clicks Send.
    await typeAndClickSend(a, 'hello from A');
    await waitLine(b, 'in', 'hello from A');
    await waitLine(a, 'out', 'hello from A');
    assert.equal(await a.inputValue('#input'), '', 'the input is cleared after sending');

    // B answers with Enter. Once A has B's answer, anything the server would
    // have echoed back to A of A's own message is there too (one connection
    // is in order), so the "never echoed" check below needs no sleep.
    await typeAndPressEnter(b, 'hi back from B');
    await waitLine(a, 'in', 'hi back from B');
    await waitLine(b, 'out', 'hi back from B');
    assert.deepEqual(await lines(a, 'in'), ['hi back from B'], 'A never sees its own message as ←');
    assert.deepEqual(await lines(b, 'out'), ['hi back from B']);
    // Who said what: the sender's name before the text, own lines acked.
    await Promise.all([waitAllAcked(a), waitAllAcked(b)]);
    assert.deepEqual(await chat(a), [`${nameA}: hello from A [acked]`, `${nameB}: hi back from B`]);
    assert.deepEqual(await chat(b), [`${nameA}: hello from A`, `${nameB}: hi back from B [acked]`]);
    assert.equal(await a.getAttribute('#log li[data-dir="out"]', 'data-id'), '1', 'the ack gives the message its id');

    // Blank and whitespace-only input is refused, not sent.
    await a.click('#input');
    await a.keyboard.press('Enter');
    await a.keyboard.type('   ');
    await a.keyboard.press('Enter');
    assert.equal(await a.getAttribute('#input', 'aria-invalid'), 'true', 'blank input is marked as refused');
    await typeAndPressEnter(a, ' after the blanks');
    await waitLine(b, 'in', '    after the blanks');
    assert.deepEqual(await lines(b, 'in'), ['hello from A', '    after the blanks'], 'blank messages were not sent');

    // Received text is text, never markup.
    const evil = '<img src=x onerror="window.__pwned=1"><b>bold?</b>';
    await a.fill('#input', evil);
    await a.click('#send');
    await waitLine(b, 'in', evil);
    assert.equal(await b.$$eval('#log img, #log b', (els) => els.length), 0, 'markup in a message became elements');
    assert.equal(await b.evaluate(() => window.__pwned), undefined);

    // A long unbroken message wraps instead of widening the log.
    const long = 'https://example.com/' + 'a-very-long-path-segment-without-spaces-'.repeat(6) + 'end';
    await a.fill('#input', long);
    await a.keyboard.press('Enter');
    await waitLine(b, 'in', long);
    for (const p of [a, b]) {
      const [sw, cw] = await p.$eval('#log', (e) => [e.scrollWidth, e.clientWidth]);
      assert.ok(sw <= cw, `the log scrolls sideways (${sw} > ${cw}): long lines must wrap`);
    }

    // A binary frame from a third, non-browser client (no subprotocol: it
    // gets the raw frames) shows as its size.
    const raw = new WebSocket(`ws://127.0.0.1:${s.port}/`);
    await new Promise((resolve, reject) => { raw.once('message', resolve); raw.once('error', reject); });
    await Promise.all([waitConnections(a, 3), waitConnections(b, 3)]);
    raw.send(Buffer.from([0, 1, 2, 254, 255]), { binary: true });
    await Promise.all([waitLine(a, 'in', '[binary, 5 bytes]'), waitLine(b, 'in', '[binary, 5 bytes]')]);
    raw.close(1000, 'bye');
    await Promise.all([waitConnections(a, 2), waitConnections(b, 2)]);

    await typeAndPressEnter(b, 'Nice, it works ✓ — and UTF-8 too: ünïcödé, Ελληνικά, Кириллица');
    await waitLine(a, 'in', 'Nice, it works ✓ — and UTF-8 too: ünïcödé, Ελληνικά, Кириллица');

    await shot(a, 'tab-a.png');
    await shot(b, 'tab-b.png');
    await b.setViewportSize({ width: 390, height: 760 });
    const [sw, cw] = await b.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw <= cw, `at 390 px the page scrolls sideways (${sw} > ${cw})`);
    await shot(b, 'tab-b-narrow.png');
    await b.emulateMedia({ colorScheme: 'dark' });
    await shot(b, 'tab-b-narrow-dark.png');
  });

  scenario('names: chosen in the page, checked first, remembered, shown to the others', async (ctx) => {
    const s = await ctx.server();
    const a = await ctx.page(s.base + '/', 'A');
    const b = await ctx.page(s.base + '/', 'B');
    await Promise.all([welcomedAs(a), welcomedAs(b)]);

    // The server answers a bad ?name= with 400, which a browser only sees as
    // 1006: the page checks first and stays connected under its old name.
    assert.equal((await rawUpgrade(s.port, '/?name=' + 'x'.repeat(33))).status, 400, 'the server refuses 33 characters');
    await chooseName(a, 'x'.repeat(33));
    await waitLine(a, 'err', 'name not changed: a name has at most 32 characters');
    assert.equal(await a.getAttribute('#name', 'aria-invalid'), 'true');
    assert.equal(await a.evaluate(() => localStorage.getItem('miochat.name')), null);
    assert.equal(await state(a), 'connected', 'a refused name does not reconnect');

    // A good name (a space and non-ASCII travel percent-encoded) reconnects
    // the tab under it, and is kept in localStorage.
    await chooseName(a, 'Ann Ångström');
    await waitLine(a, 'sys', 'welcome: connected to chat as Ann Ångström');
    assert.equal(await a.getAttribute('#name', 'aria-invalid'), null);
    assert.equal(await a.evaluate(() => localStorage.getItem('miochat.name')), 'Ann Ångström');
    await chooseName(b, 'bob');
    await waitLine(b, 'sys', 'welcome: connected to chat as bob');
    await waitState(a, 'connected');
    await typeAndPressEnter(a, 'hi, I am Ann');
    await waitLine(b, 'in', 'hi, I am Ann');
    await typeAndPressEnter(b, 'hello Ann');
    await waitLine(a, 'in', 'hello Ann');
    await Promise.all([waitAllAcked(a), waitAllAcked(b)]);
    assert.deepEqual(await chat(a), ['Ann Ångström: hi, I am Ann [acked]', 'bob: hello Ann']);
    assert.deepEqual(await chat(b), ['Ann Ångström: hi, I am Ann', 'bob: hello Ann [acked]']);

    // A message sent just before a rename: the old connection is closed
    // before its ack can arrive (the server is stopped meanwhile), so the
    // line is unsure; the server stored it, so it comes back on the new
    // connection from the old name (replayed or live, whichever the server
    // read first) and the line turns acked, shown once, as ours.
    s.kill('SIGSTOP');
    try {
      await typeAndPressEnter(a, 'sent just before a rename');
      await chooseName(a, 'ann');
      await a.waitForSelector('#log li[data-dir="out"][data-state="unsure"]', { state: 'attached', timeout: T_MSG });
    } finally {
      s.kill('SIGCONT');
    }
    await waitLine(a, 'sys', 'welcome: connected to chat as ann');
    await waitLine(b, 'in', 'sent just before a rename');
    assert.equal(await waitAllAcked(a), 2);
    await typeAndPressEnter(b, 'nice new name');
    await waitLine(a, 'in', 'nice new name');
    assert.deepEqual(await chat(a), ['Ann Ångström: hi, I am Ann [acked]', 'bob: hello Ann',
      'Ann Ångström: sent just before a rename [acked]', 'bob: nice new name']);

    // Remembered: a reload connects under the name at once.
    await a.reload();
    await waitLine(a, 'sys', 'welcome: connected to chat as ann');
    assert.equal(await a.inputValue('#name'), 'ann');
    // And an empty name goes back to a guest name.
    await a.fill('#name', '');
    await a.press('#name', 'Enter');
    await waitLineMatching(a, 'sys', /^welcome: connected to chat as guest-\d+$/);
    assert.equal(await a.evaluate(() => localStorage.getItem('miochat.name')), null);
  });

  scenario('a tab that was away gets what it missed, once and in order', async (ctx) => {
    const s = await ctx.server();
    // Names chosen on an earlier visit (localStorage).
    const a = await ctx.page(s.base + '/', 'ann', { storage: { 'miochat.name': 'ann' } });
    const b = await ctx.page(s.base + '/', 'bob', { storage: { 'miochat.name': 'bob' } });
    await Promise.all([waitLine(a, 'sys', 'welcome: connected to chat as ann'), waitLine(b, 'sys', 'welcome: connected to chat as bob')]);

    await say(a, b, 'Morning! Is the 2.3 release still on for today?');
    await say(b, a, 'Yes, the last CI run was green');
    await say(a, b, 'Great. I’m on the train, the connection may drop in the tunnels');

    // ann goes away. Once the close handshake is done the server sends her
    // nothing more, so what bob says next is missed.
    await a.click('#disconnect');
    await waitCloseCode(a, 1000);
    const missed = [
      'Tagged v2.3.0 and pushed the tag',
      'Release notes are up on the wiki',
      'I’ll start the rollout when you’re back',
    ];
    for (const text of missed) await typeAndPressEnter(b, text);
    assert.equal(await waitAllAcked(b), 4, 'bob’s messages are stored');
    assert.equal((await chat(a)).length, 3, 'ann saw none of them');

    // ann comes back: the three are replayed, after a line that counts them.
    await a.click('#reconnect');
    await waitLine(a, 'sys', 'connected via WebSocket, resuming after message #3');
    await waitLine(a, 'sys', '3 missed messages restored');
    for (const text of missed) await waitLine(a, 'in', text);
    // Live again: bob's next message is not counted as restored.
    await say(b, a, 'Welcome back!');
    await say(a, b, 'Thanks! Read it all, go ahead with the rollout');
    await Promise.all([waitAllAcked(a), waitAllAcked(b)]);

    const want = [
      'ann: Morning! Is the 2.3 release still on for today? [acked]',
      'bob: Yes, the last CI run was green',
      'ann: Great. I’m on the train, the connection may drop in the tunnels [acked]',
      ...missed.map((t) => 'bob: ' + t),
      'bob: Welcome back!',
      'ann: Thanks! Read it all, go ahead with the rollout [acked]',
    ];
    assert.deepEqual(await chat(a), want, 'each message once, in order');
    // The count sits right above the replayed messages, and is the only one.
    const texts = await a.$$eval('#log li', (els) => els.map((li) => li.querySelector('.text').textContent));
    const at = texts.indexOf('3 missed messages restored');
    assert.deepEqual(texts.slice(at + 1, at + 4), missed);
    assert.equal(texts.filter((t) => /missed messages? restored/.test(t)).length, 1);
    assert.deepEqual(await lines(a, 'warn'), [], 'nothing was lost');
    // The ids line up with bob's acks: the resume asked for exactly what followed.
    const ids = await a.$$eval('#log li.chat', (els) => els.map((li) => li.dataset.id ?? null));
    assert.deepEqual(ids.slice(3, 6), ['4', '5', '6']);

    await shot(a, 'tab-a-restored.png');
    // The README's picture (notes/img/chat-two-tabs.png): the two tabs side
    // by side, each scrolled to its newest line and counting both.
    await Promise.all([waitConnections(a, 2), waitConnections(b, 2)]);
    for (const p of [a, b]) {
      await p.setViewportSize({ width: 660, height: 740 });
      await p.click('#input'); // where a user's cursor would be
    }
    await shotSideBySide([a, b], 'two-tabs.png');
  });

  scenario('a tab away for longer than the history holds is told messages were lost', async (ctx) => {
    const s = await ctx.server({ extra: ['--history-messages', '2'] });
    const a = await ctx.page(s.base + '/', 'A');
    const b = await ctx.page(s.base + '/', 'B');
    await Promise.all([welcomedAs(a), welcomedAs(b)]);
    await typeAndPressEnter(a, 'back in a minute');
    await waitLine(b, 'in', 'back in a minute');
    await waitAllAcked(a);

    await a.click('#disconnect');
    await waitCloseCode(a, 1000);
    const gone = ['one', 'two', 'three', 'four'];
    for (const text of gone) await typeAndPressEnter(b, text);
    assert.equal(await waitAllAcked(b), 4);

    // The log holds the last two: ann's resume after id 1 cannot be served.
    await a.click('#reconnect');
    await waitLine(a, 'warn', '4 messages lost while you were disconnected: the server no longer holds them');
    await typeAndPressEnter(b, 'after the gap');
    await waitLine(a, 'in', 'after the gap');
    assert.deepEqual(await lines(a, 'in'), ['after the gap'], 'nothing of the lost ones shows');
    assert.equal((await lines(a, 'sys')).some((t) => /restored/.test(t)), false);
    await shot(a, 'tab-a-reset.png');
  });

  // --- the other transports (notes/07-sse-or-polling.md) ------------------

  // A tab on a transport, chosen as a link would (?transport=), welcomed.
  async function tabVia(ctx, s, transport, name) {
    const page = await ctx.page(`${s.base}/?transport=${transport}`, name, { storage: { 'miochat.name': name } });
    await welcomedAs(page);
    assert.equal(await page.getAttribute('#endpoint', 'data-transport'), transport);
    assert.equal(await page.$eval('#transport', (e) => e.value), transport, 'the switch shows the transport in use');
    return page;
  }

  scenario('two tabs on different transports chat: SSE, long-poll and WebSocket in one room', async (ctx) => {
    const s = await ctx.server();
    for (const [x, y] of [['sse', 'long-poll'], ['long-poll', 'websocket'], ['websocket', 'sse']]) {
      const a = await tabVia(ctx, s, x, 'ann-' + x);
      const b = await tabVia(ctx, s, y, 'bob-' + y);
      await say(a, b, `hello from ${x}`);
      await say(b, a, `and back from ${y}`);
      await Promise.all([waitAllAcked(a), waitAllAcked(b)]);
      const want = [`ann-${x}: hello from ${x}`, `bob-${y}: and back from ${y}`];
      assert.deepEqual((await chat(a)).map((l) => l.replace(/ \[acked\]$/, '')), want, `${x} tab`);
      assert.deepEqual((await chat(b)).map((l) => l.replace(/ \[acked\]$/, '')), want, `${y} tab`);
      // The same ids on both sides: one log, one order.
      const ids = async (p) => p.$$eval('#log li.chat', (els) => els.map((li) => li.dataset.id));
      assert.deepEqual(await ids(a), await ids(b));
      if (x === 'sse') await shotSideBySide([a, b], 'sse-and-long-poll.png');
      for (const p of [a, b]) await p.close();
    }
  });

  scenario('an SSE tab and a long-poll tab get what they missed after a reconnect, once', async (ctx) => {
    const s = await ctx.server();
    for (const transport of ['sse', 'long-poll']) {
      const a = await tabVia(ctx, s, transport, 'ann');
      const b = await tabVia(ctx, s, 'websocket', 'bob');
      await say(b, a, `before, on ${transport}`);
      await a.click('#disconnect');
      await waitCloseCode(a, 1000);
      const missed = ['one', 'two', 'three'].map((t) => `${t} (${transport})`);
      for (const text of missed) await typeAndPressEnter(b, text);
      await waitAllAcked(b);
      await a.click('#reconnect');
      await waitLine(a, 'sys', '3 missed messages restored');
      for (const text of missed) await waitLine(a, 'in', text);
      await say(b, a, `live again on ${transport}`);
      const seen = (await lines(a, 'in')).filter((t) => t.endsWith(`(${transport})`));
      assert.deepEqual(seen, missed, 'each missed message once, in order');
      assert.deepEqual(await lines(a, 'warn'), [], 'nothing was lost');
      for (const p of [a, b]) await p.close();
    }
  });

  scenario('the transport switch moves a tab to another transport without losing a message', async (ctx) => {
    const s = await ctx.server();
    const a = await tabVia(ctx, s, 'websocket', 'ann');
    const b = await tabVia(ctx, s, 'websocket', 'bob');
    for (const next of ['sse', 'long-poll', 'websocket']) {
      await a.selectOption('#transport', next);
      await waitLine(a, 'sys', 'switching to ' + (await a.$eval(`#transport option[value="${next}"]`, (o) => o.textContent)));
      await a.waitForSelector(`#endpoint[data-transport="${next}"]`, { state: 'attached', timeout: T_CONNECT });
      await waitState(a, 'connected');
      await say(b, a, `now ${next}`);
      await say(a, b, `ann on ${next}`);
    }
    await waitAllAcked(a);
    assert.deepEqual(await lines(a, 'in'), ['now sse', 'now long-poll', 'now websocket']);
    assert.deepEqual(await lines(a, 'warn'), []);
    await shot(a, 'transport-switch.png');
  });

  scenario('the Disconnect and Reconnect buttons', async (ctx) => {
    const s = await ctx.server();
    const a = await ctx.page(s.base + '/', 'A');
    await waitState(a, 'connected');
    await a.click('#disconnect');
    await waitCloseCode(a, 1000);
    assert.match(await a.textContent('#close-info'), /^closed: 1000 normal closure/);
    assert.equal(await state(a), 'disconnected');
    assert.match(await a.textContent('#retry'), /press Reconnect/, 'no automatic reconnect after Disconnect');
    await waitConnections(a, 0);
    await a.click('#reconnect');
    await waitState(a, 'connected');
    await waitConnections(a, 1);
    assert.equal(await a.isHidden('#close-info'), true);
  });

  scenario('SIGKILL: tabs show 1006, count down, and come back when the server does', async (ctx) => {
    const s1 = await ctx.server();
    const port = s1.port;
    const a = await ctx.page(s1.base + '/', 'A');
    const b = await ctx.page(s1.base + '/', 'B');
    await Promise.all([waitState(a, 'connected'), waitState(b, 'connected')]);
    await typeAndClickSend(a, 'before the crash');
    await waitLine(b, 'in', 'before the crash');

    s1.kill('SIGKILL');
    await s1.waitExit(T_EXIT);

    for (const p of [a, b]) {
      await waitCloseCode(p, 1006);
      assert.match(await p.textContent('#close-info'), /1006 connection lost without a close frame/);
      await p.waitForFunction(() => {
        const r = document.getElementById('retry');
        return !r.hidden && /^reconnecting in \d+ s$/.test(r.textContent);
      }, null, { timeout: T_CONNECT, polling: 50 });
      assert.notEqual(await state(p), 'connected');
    }
    await a.waitForFunction(() => document.getElementById('state').dataset.state === 'disconnected',
      null, { timeout: T_CONNECT, polling: 20 });

    // The backoff grows: after two failed attempts (0.5 s, then 1 s) the next
    // wait is over a second, and the failures share one log line.
    await a.waitForFunction(() => Number(document.getElementById('retry').dataset.ms) > 1100,
      null, { timeout: T_CONNECT, polling: 50 });
    await a.waitForFunction(() => [...document.querySelectorAll('#log li[data-dir="err"] .text')]
      .some((e) => /^could not connect \(1006 .*\) ×\d+$/.test(e.textContent)), null, { timeout: T_CONNECT });
    assert.match(await a.textContent('#close-info'), /^closed: 1006/, 'the close of the live connection stays in view');

    // Sending while disconnected is refused visibly, and the text is kept.
    await typeAndPressEnter(a, 'anyone there?');
    await waitLine(a, 'err', 'not sent (not connected): anyone there?');
    assert.equal(await a.inputValue('#input'), 'anyone there?');
    assert.equal(await a.getAttribute('#input', 'aria-invalid'), 'true');
    await shot(a, 'tab-a-reconnecting.png');

    // The same port again: the tabs must find it by themselves.
    const s2 = await ctx.server({ port, retryForMs: 10_000 });
    assert.equal(s2.port, port);
    await Promise.all([waitState(a, 'connected', T_RECONNECT), waitState(b, 'connected', T_RECONNECT)]);
    for (const p of [a, b]) {
      assert.equal(await p.isHidden('#retry'), true, 'the countdown is gone once connected');
      assert.equal(await p.isHidden('#close-info'), true, 'the old close is cleared once connected');
      // The tabs asked to resume in the old server's epoch: the new server
      // answers with a reset, and the page says what that means.
      await waitLineMatching(p, 'warn', /^the server restarted while you were disconnected: /);
    }
    await a.click('#send'); // the kept text goes out now
    await waitLine(b, 'in', 'anyone there?');
    await typeAndPressEnter(b, 'back again');
    await waitLine(a, 'in', 'back again');
    await shot(a, 'tab-a-reconnected.png');
  });

  scenario('SIGTERM: tabs show 1001 and the server exits 0', async (ctx) => {
    const s = await ctx.server();
    const a = await ctx.page(s.base + '/', 'A');
    const b = await ctx.page(s.base + '/', 'B');
    await Promise.all([waitState(a, 'connected'), waitState(b, 'connected')]);
    await typeAndClickSend(a, 'last words');
    await waitLine(b, 'in', 'last words');

    s.kill('SIGTERM');
    await Promise.all([waitCloseCode(a, 1001), waitCloseCode(b, 1001)]);
    for (const p of [a, b]) {
      assert.match(await p.textContent('#close-info'), /^closed: 1001 going away/);
    }
    const exit = await s.waitExit(T_EXIT);
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'exit status after SIGTERM');
    await shot(b, 'tab-b-shutdown.png');
  });

  scenario('--token: the page with ?token= chats, the page without is refused', async (ctx) => {
    const s = await ctx.server({ token: 's3cret' });

    // What the server answers, before any browser is involved.
    assert.equal((await rawUpgrade(s.port, '/')).status, 401, 'upgrade without a token');
    assert.equal((await rawUpgrade(s.port, '/?token=wrong')).status, 401, 'upgrade with a wrong token');
    assert.equal((await rawUpgrade(s.port, '/?token=s3cret')).status, 101, 'upgrade with the token');

    const a = await ctx.page(s.base + '/?token=s3cret', 'A');
    const b = await ctx.page(s.base + '/?token=s3cret', 'B');
    const n = await ctx.page(s.base + '/', 'no-token');
    await Promise.all([waitState(a, 'connected'), waitState(b, 'connected')]);
    await typeAndClickSend(a, 'members only');
    await waitLine(b, 'in', 'members only');

    await waitCloseCode(n, 1006);
    assert.match(await n.textContent('#close-info'), /^could not connect: 1006/);
    await n.waitForSelector('#hint', { state: 'visible', timeout: T_CONNECT });
    assert.match(await n.textContent('#hint'), /token/);
    assert.notEqual(await state(n), 'connected');
    await waitConnections(n, 2);
    assert.deepEqual(await lines(n, 'in'), [], 'the refused page received nothing');
    await shot(n, 'tab-no-token.png');
  });
});
