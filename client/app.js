// miochat browser client: plain JavaScript, no framework, no build step.
//
// One link to the server at a time (keeping ?token= from the page URL), a
// log of who said what, the connection state as a badge, the close code in
// words, and automatic reconnect with exponential backoff. The link is a
// WebSocket to ws(s)://<this host>/, or, chosen with the "via" switch (or
// ?transport=sse|long-poll in the page URL), Server-Sent Events from
// /events or long-polling on /poll, both sending with POST /send
// (notes/07-sse-or-polling.md). All three carry the same objects.
// Everything that came from the network is inserted with textContent, never
// innerHTML, so a message can never become markup.
//
// The page speaks the miochat.v1 subprotocol (src/v1.rs on the server): every
// frame the server sends is one JSON object, as text.
//
//   {"type":"welcome","message":"connected to chat","epoch":E,"last_id":N,"name":"guest-12"}
//   {"type":"message","id":N,"from":"guest-7","text":"…"}    (or "binary":"<base64>")
//   {"type":"ack","id":N}                                    (our own message, stored as N)
//   {"type":"reset","reason":"history gone","last_id":N}     (a resume that cannot be served)
//
// Ids count up in the server's message log; the epoch names that log (a
// restarted server has a new one). After a reconnect the page asks for what
// it missed with ?since=<highest id seen>&epoch=<epoch>: the server replays
// every message after that id, then goes on live, or sends one reset when it
// no longer holds them. The name the user picks travels as ?name=.
'use strict';

(function () {
  // Backoff: 0.5 s doubling to a 10 s cap, each delay jittered by -25 %..+0 %
  // so that many tabs dropped by one server restart do not come back in step.
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_CAP_MS = 10000;
  const STATUS_EVERY_MS = 2000;

  // RFC 6455 section 7.4.1 and the IANA registry, in words a person can read.
  const CLOSE_MEANINGS = {
    1000: 'normal closure',
    1001: 'going away (server shutting down or page left)',
    1002: 'protocol error',
    1003: 'unsupported data',
    1005: 'no status code in the close frame',
    1006: 'connection lost without a close frame',
    1007: 'invalid payload (e.g. text that is not UTF-8)',
    1008: 'policy violation',
    1009: 'message too big',
    1010: 'a required extension was not negotiated',
    1011: 'internal server error',
    1012: 'service restart',
    1013: 'try again later',
    1014: 'bad gateway',
    1015: 'TLS handshake failed',
  };

  function closeMeaning(code) {
    if (CLOSE_MEANINGS[code]) return CLOSE_MEANINGS[code];
    if (code >= 3000 && code <= 3999) return 'registered by a library or framework';
    if (code >= 4000 && code <= 4999) return 'application-defined';
    return 'unknown close code';
  }

  const $ = (id) => document.getElementById(id);
  const el = {
    state: $('state'),
    connections: $('connections'),
    nameForm: $('name-form'),
    name: $('name'),
    reconnect: $('reconnect'),
    disconnect: $('disconnect'),
    closeInfo: $('close-info'),
    retry: $('retry'),
    hint: $('hint'),
    log: $('log'),
    composer: $('composer'),
    input: $('input'),
    send: $('send'),
    endpoint: $('endpoint'),
    transport: $('transport'),
  };

  const SUBPROTOCOL = 'miochat.v1';
  const NAME_KEY = 'miochat.name'; // localStorage key of the chosen name
  const TRANSPORT_KEY = 'miochat.transport'; // localStorage key of the chosen transport
  const TRANSPORTS = { websocket: 'WebSocket', sse: 'SSE + POST', 'long-poll': 'long-poll + POST' };

  // --- the name -----------------------------------------------------------
  // The server refuses a bad ?name= with HTTP 400, and a browser only sees
  // the connection fail (1006, no reason). So the page checks the same rules
  // first (src/v1.rs check_name): 1 to 32 characters, counted as code points
  // like Rust's chars(), none of them a control character (Unicode Cc) or
  // an invisible one that reorders or hides text, and not a guest's name.
  // Returns what is wrong, or null. An empty name means "give me a guest
  // name" and is fine.
  function nameProblem(name) {
    if (name === '') return null;
    if (Array.from(name).length > 32) return 'a name has at most 32 characters';
    if (/\p{Cc}/u.test(name)) return 'a name must not contain control characters';
    if (/[\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]/u.test(name)) {
      return 'a name must not contain invisible characters';
    }
    if (/^guest-[0-9]+$/.test(name)) return 'names like guest-12 are given to guests';
    try {
      encodeURIComponent(name); // throws on a lone surrogate (not valid Unicode)
    } catch (e) {
      return 'a name must be valid Unicode';
    }
    return null;
  }

  // localStorage can be missing or refuse (private modes, file:// pages):
  // then the name lasts as long as the page.
  let nameFallback = '';
  function storedName() {
    let name = nameFallback;
    try { name = localStorage.getItem(NAME_KEY) ?? ''; } catch (e) { /* no storage */ }
    return nameProblem(name) === null ? name : ''; // never send a name the server would refuse
  }
  function storeName(name) {
    nameFallback = name;
    try {
      if (name === '') localStorage.removeItem(NAME_KEY);
      else localStorage.setItem(NAME_KEY, name);
    } catch (e) { /* no storage: nameFallback keeps it */ }
  }

  // The transport: the page URL's ?transport= first (a link can choose),
  // then the last one chosen in this browser, then WebSocket.
  let transport = 'websocket';
  function pickTransport() {
    let stored = null;
    try { stored = localStorage.getItem(TRANSPORT_KEY); } catch (e) { /* no storage */ }
    const wanted = new URLSearchParams(location.search).get('transport') ?? stored;
    return Object.hasOwn(TRANSPORTS, wanted ?? '') ? wanted : 'websocket';
  }
  function storeTransport(kind) {
    transport = kind;
    try { localStorage.setItem(TRANSPORT_KEY, kind); } catch (e) { /* lasts as long as the page */ }
  }

  // --- where to connect ---------------------------------------------------
  const pageParams = new URLSearchParams(location.search);
  const token = pageParams.get('token');
  const wsBase = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';

  // Where this page stands in the server's message log, kept across
  // connections so that a reconnect can ask for what it missed.
  let epoch = null; // the log's epoch from the last welcome; null: never welcomed
  let lastId = 0;   // the highest id seen (message or ack) in that epoch

  // The URL of the next connection: the token, the chosen name, and where to
  // resume. encodeURIComponent, not URLSearchParams: the latter writes a
  // space as "+", which is only right in HTML forms.
  function wsUrl() {
    return wsBase + query(epoch !== null ? ['since=' + lastId, 'epoch=' + encodeURIComponent(epoch)] : []);
  }

  // The query every request carries: the token and the chosen name, then `more`.
  function query(more) {
    const parts = [];
    if (token !== null) parts.push('token=' + encodeURIComponent(token));
    const name = storedName();
    if (name !== '') parts.push('name=' + encodeURIComponent(name));
    parts.push(...more);
    return parts.length ? '?' + parts.join('&') : '';
  }

  // --- links: one interface over the three transports ----------------------
  // A link has `open` (true while it carries messages), `send(text)` (may
  // return a promise that rejects when the server refuses), `close(code,
  // reason)`, and calls `onopen()`, `onmessage(object, raw)` and
  // `onclose({ code, reason })` once it ends (never after its handlers are
  // taken away). `since` is where to resume ({ epoch, lastId }) or null.
  function openLink(kind, since) {
    if (kind === 'sse') return sseLink(since);
    if (kind === 'long-poll') return pollLink(since);
    return webSocketLink();
  }

  function parseObject(data) {
    try { return typeof data === 'string' ? JSON.parse(data) : null; } catch (e) { return null; }
  }

  function webSocketLink() {
    // Offering the subprotocol is what makes the server speak JSON. A
    // server that does not echo it fails the handshake in the browser.
    const url = wsUrl();
    const sock = new WebSocket(url, [SUBPROTOCOL]);
    sock.binaryType = 'arraybuffer';
    const link = {
      url,
      open: false,
      send: (text) => sock.send(text),
      close: (code, reason) => sock.close(code, reason),
    };
    sock.onopen = () => { link.open = true; link.onopen?.(); };
    sock.onmessage = (ev) => link.onmessage?.(parseObject(ev.data), ev.data);
    sock.onclose = (ev) => { link.open = false; link.onclose?.({ code: ev.code, reason: ev.reason }); };
    return link;
  }

  // Ends a link made of HTTP requests, once; the close "code" says how, in
  // WebSocket's terms, so the page reports every transport the same way.
  function endLink(link, code, reason) {
    if (link.ended) return;
    link.ended = true;
    link.open = false;
    link.stop();
    link.onclose?.({ code, reason });
  }

  // POST /send: the text as the body, the key that makes it ours.
  async function post(link, text) {
    // Without a chosen name the server names the message as it named our
    // welcome: the stream's name, or guest-<the key's number>.
    const res = await fetch('send' + query(['client=' + encodeURIComponent(link.key ?? '')]), {
      method: 'POST',
      body: text,
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
    });
    if (!res.ok) throw new Error('HTTP ' + res.status + ' ' + (await res.text()).trim());
  }

  // Server-Sent Events: one endless response from /events. EventSource
  // would reconnect by itself, but with the URL it was opened with (its
  // epoch may be stale); so on an error this link ends, and the page's own
  // backoff opens a new one that names where to resume.
  function sseLink(since) {
    const more = since !== null ? ['last_event_id=' + since.lastId, 'epoch=' + encodeURIComponent(since.epoch)] : [];
    const url = new URL('events' + query(more), location.href).href;
    const source = new EventSource(url);
    const link = { url, open: false, key: null, stop: () => source.close() };
    link.send = (text) => post(link, text);
    link.close = (code, reason) => endLink(link, code, reason);
    // Open once the welcome is here, not when the response starts: a POST
    // needs the key the welcome carries.
    source.onmessage = (ev) => {
      const msg = parseObject(ev.data);
      if (msg && msg.type === 'welcome' && !link.open) {
        link.key = msg.client;
        link.open = true;
        link.onopen?.();
      }
      link.onmessage?.(msg, ev.data);
    };
    source.onerror = () => endLink(link, 1006, 'the event stream ended');
    return link;
  }

  // Long-polling: a welcome from /poll, then /poll?since=N again and again,
  // each answer a batch of objects and the `last_id` to ask after next. A
  // resumed link asks after the last id seen: the first batch is the replay
  // (or a reset).
  function pollLink(since) {
    const controller = new AbortController();
    const url = new URL('poll' + query([]), location.href).href;
    const link = { url, open: false, key: null, stop: () => controller.abort() };
    link.send = (text) => post(link, text);
    link.close = (code, reason) => endLink(link, code, reason);
    const batch = async (target) => {
      const res = await fetch(target, { cache: 'no-store', signal: controller.signal });
      if (!res.ok) throw new Error('HTTP ' + res.status + ' ' + (await res.text()).trim());
      return res.json();
    };
    (async () => {
      const first = await batch(url);
      const welcome = first.messages[0];
      link.key = welcome.client;
      link.open = true;
      link.onopen?.();
      link.onmessage?.(welcome, JSON.stringify(welcome));
      let after = since !== null ? since.lastId : first.last_id;
      let theirEpoch = since !== null ? since.epoch : first.epoch;
      while (!link.ended) {
        const more = ['since=' + after, 'epoch=' + encodeURIComponent(theirEpoch), 'client=' + encodeURIComponent(link.key)];
        const answer = await batch('poll' + query(more));
        for (const msg of answer.messages) if (!link.ended) link.onmessage?.(msg, JSON.stringify(msg));
        after = answer.last_id;
        theirEpoch = answer.epoch;
      }
    })().catch((e) => endLink(link, 1006, e.name === 'AbortError' ? 'closed' : 'a poll failed: ' + e.message));
    return link;
  }

  // A URL as shown on screen: the token itself is never echoed.
  const shown = (url) => url.replace(/token=[^&]*/, 'token=…');

  // --- state --------------------------------------------------------------
  let ws = null;              // the current socket, or null
  let everConnected = false;  // has any socket of this page reached open?
  let attempt = 0;            // failed attempts since the last successful open
  let retryTimer = null;      // pending reconnect (setTimeout id)
  let retryAt = 0;            // when it fires (Date.now() ms)
  let countdownTimer = null;  // ticks the "reconnecting in N s" text
  let autoReconnect = true;   // false after the user pressed Disconnect
  let failLine = null;        // the log line that counts repeated failed attempts
  let failCount = 0;

  let myName = null;          // the name the server gave us (the welcome's name)
  // Our own messages the server has not acked yet, oldest first:
  // { li, text, name, sock, old }. sock is the socket that sent it; acks on
  // it come in the order the messages were sent. old: see onWelcome.
  const pending = [];
  // While a resume is being replayed: { upTo, count, line, restarted }.
  // upTo is the welcome's last_id: every message with an id up to it is
  // replay (it was stored before we came back), everything after is live.
  let replay = null;

  function setState(state) {
    el.state.dataset.state = state;
    el.state.textContent = state;
    document.title = 'miochat · ' + state;
    const live = state === 'connected' || state === 'connecting' || state === 'reconnecting';
    el.disconnect.hidden = !live;
    el.reconnect.hidden = live;
  }

  // --- the log ------------------------------------------------------------
  function timeNow() {
    const d = new Date();
    return [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map((n) => String(n).padStart(2, '0')).join(':');
  }

  const MARKS = {
    out: ['→', 'sent'], in: ['←', 'received'], sys: ['•', 'info'], warn: ['⚠', 'warning'], err: ['!', 'error'],
  };

  // kind: 'out' (→ we said), 'in' (← someone else said), 'sys' (about the
  // connection), 'warn' (something the user should know), 'err' (something
  // went wrong). `from` (chat lines only) is the sender's name, shown before
  // the text. Returns the <li> so it can be updated.
  function addLine(kind, text, from = null) {
    const nearBottom = atBottom;
    const li = document.createElement('li');
    li.className = 'line ' + kind;
    li.dataset.dir = kind;
    const mark = document.createElement('span');
    mark.className = 'mark';
    mark.textContent = MARKS[kind][0];
    mark.setAttribute('aria-label', MARKS[kind][1]);
    li.append(mark);
    if (from !== null) {
      // A chat line: the name gets a colour of its own, the same in every tab.
      li.classList.add('chat');
      li.dataset.from = from;
      li.style.setProperty('--hue', String(nameHue(from)));
      // A long name is cut with "…" (the full one is its tooltip); the
      // "(you)" of our own lines stays in view.
      const who = document.createElement('span');
      who.className = 'from';
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = from;
      name.title = from;
      who.append(name);
      if (kind === 'out') {
        const you = document.createElement('span');
        you.className = 'you';
        you.textContent = '(you)';
        who.append(you);
      }
      li.append(who);
    }
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    const meta = document.createElement('span');
    meta.className = 'meta';
    const status = document.createElement('span');
    status.className = 'status';
    const when = document.createElement('time');
    when.className = 'time';
    when.textContent = timeNow();
    meta.append(status, when);
    li.append(body, meta);
    el.log.append(li);
    if (nearBottom || kind === 'out') el.log.scrollTop = el.log.scrollHeight;
    return li;
  }

  // Whether the log shows its newest line: then new lines and a resized
  // window keep it there; a reader scrolled up to older lines stays put.
  let atBottom = true;
  el.log.addEventListener('scroll', () => {
    atBottom = el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 40;
  });
  new ResizeObserver(() => {
    if (atBottom) el.log.scrollTop = el.log.scrollHeight;
  }).observe(el.log);

  // A hue from 0 to 359 for a name (a string hash), so each sender keeps
  // one colour.
  function nameHue(name) {
    let h = 0;
    for (const c of name) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  // Our own lines go through these states (li.dataset.state):
  //   pending  sent, waiting for the server's ack
  //   acked    the server stored it (li.dataset.id is its id)
  //   unsure   the connection ended before the ack; the next connection
  //            turns it into acked if the message comes back from the log
  const OWN_STATES = {
    pending: ['sending…', 'sent, waiting for the server to confirm it'],
    acked: ['✓', 'stored by the server'],
    unsure: ['?', 'not confirmed: the connection closed before the server acknowledged it'],
  };

  function setOwnState(li, state, id = null) {
    li.dataset.state = state;
    const status = li.querySelector('.status');
    status.textContent = OWN_STATES[state][0];
    status.title = OWN_STATES[state][1];
    if (id !== null) {
      li.dataset.id = String(id);
      status.title += ' as message #' + id;
    }
  }

  // The connection that sent them is gone: its acks will never come. Mark
  // our unacked lines unsure until the next connection tells more.
  function connectionEnded() {
    for (const p of pending) setOwnState(p.li, 'unsure');
  }

  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);

  // --- what the server says -----------------------------------------------
  // `since` is where this connection asked to resume ({ epoch, lastId }), or
  // null on a first connection.
  function onWelcome(msg, since) {
    // A message sent on a connection that ended before its ack may still
    // have been stored: then it comes back on the next connection, from our
    // old name, either replayed or (if the server read it only after this
    // welcome) live, and onChatMessage matches it to its line. Lines the
    // previous connection could not account for are given up on; this one
    // gets the lines of the connection just ended.
    for (let i = pending.length - 1; i >= 0; i--) {
      if (pending[i].old) pending.splice(i, 1); // stays unsure
      else if (pending[i].sock !== ws) pending[i].old = true;
    }
    myName = String(msg.name);
    el.name.placeholder = myName; // with no name chosen, this is the guest name
    addLine('sys', 'welcome: ' + String(msg.message ?? '') + ' as ' + myName);
    const newest = Number(msg.last_id);
    const theirEpoch = String(msg.epoch);
    if (since === null) {
      // A first connection: what was said before we came is not replayed.
      epoch = theirEpoch;
      lastId = newest;
    } else if (theirEpoch !== since.epoch || newest < since.lastId) {
      // Another log (the server restarted): our ids mean nothing there and a
      // reset follows. Count from this log's ids from now on.
      epoch = theirEpoch;
      lastId = newest;
      replay = { upTo: newest, count: 0, line: null, restarted: true };
    } else if (newest > since.lastId) {
      // Either the replay of ids since.lastId+1 .. newest follows, or a
      // reset when the server no longer holds them.
      replay = { upTo: newest, count: 0, line: null, restarted: false };
    }
    // Else nothing was said while we were away: no replay, no reset.
  }

  function onChatMessage(msg) {
    const id = Number(msg.id);
    if (replay !== null && id > replay.upTo) endReplay(); // the first live one
    if (id <= lastId) {
      // Never show one message twice (the server sends none twice; this
      // guards the page's own bookkeeping).
      console.warn('miochat: message ' + id + ' seen already, not shown again');
      return;
    }
    lastId = id;
    const from = String(msg.from);
    const text = typeof msg.text === 'string' ? msg.text : '[binary, ' + base64Bytes(msg.binary) + ' bytes]';
    // A message of ours whose ack never came (see onWelcome): the unsure
    // line already shown, now known to be stored. They come back in the
    // order they were sent, so only the oldest can be next.
    const oldest = pending.find((p) => p.old);
    if (oldest && oldest.name === from && oldest.text === text) {
      pending.splice(pending.indexOf(oldest), 1);
      setOwnState(oldest.li, 'acked', id);
    } else {
      if (replay !== null) countReplayed();
      addLine('in', text, from).dataset.id = String(id);
    }
    if (replay !== null && id === replay.upTo) endReplay(); // the last replayed one
  }

  // One more missed message restored: the line above the replayed ones says
  // how many so far, and ends up saying how many in all.
  function countReplayed() {
    replay.count += 1;
    const text = plural(replay.count, 'missed message', 'missed messages') + ' restored';
    if (replay.line === null) {
      replay.line = addLine('sys', text);
      replay.line.classList.add('restored');
    } else {
      replay.line.querySelector('.text').textContent = text;
    }
  }

  // The replay is complete: what follows is live.
  function endReplay() {
    replay = null;
  }

  function onAck(msg) {
    const id = Number(msg.id);
    if (replay !== null) endReplay(); // acks are live: the replay came first
    const i = pending.findIndex((p) => p.sock === ws);
    if (i < 0) {
      console.warn('miochat: ack ' + id + ' for no message of ours');
    } else {
      setOwnState(pending.splice(i, 1)[0].li, 'acked', id);
    }
    if (id > lastId) lastId = id;
  }

  // The server no longer holds what we missed (or restarted): say so, and go
  // on live from its newest id.
  function onReset(msg) {
    const missed = replay !== null && !replay.restarted ? Number(msg.last_id) - lastId : 0;
    if (replay !== null && replay.restarted) {
      addLine('warn', 'the server restarted while you were disconnected: ' +
        'any messages sent before the restart that you had not seen are lost');
    } else if (missed > 0) {
      addLine('warn', plural(missed, 'message', 'messages') + ' lost while you were disconnected: ' +
        'the server no longer holds ' + (missed === 1 ? 'it' : 'them'));
    } else {
      addLine('warn', 'some messages may have been lost while you were disconnected');
    }
    replay = null;
    lastId = Number(msg.last_id);
  }

  // The size of base64 data without decoding it: 3 bytes per 4 characters,
  // less one per "=" of padding.
  function base64Bytes(b64) {
    const s = String(b64 ?? '');
    const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
    return Math.floor(s.length / 4) * 3 - pad;
  }

  // --- /status: the number of open connections ----------------------------
  // Resolves true when the HTTP side of the server answered, false if not.
  // Calls while one request is out share it.
  let statusPending = null;
  function refreshStatus() {
    if (!statusPending) {
      statusPending = fetchStatus().finally(() => { statusPending = null; });
    }
    return statusPending;
  }

  async function fetchStatus() {
    try {
      const res = await fetch('status', { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const body = await res.json();
      // Clients of every transport: a long-poll client counts while its
      // request is held, which is nearly always.
      const n = Number(body.connections) + Number(body.sse ?? 0) + Number(body.long_poll ?? 0);
      el.connections.textContent = Number.isFinite(n) ? n + ' online' : '? online';
      el.connections.dataset.count = Number.isFinite(n) ? String(n) : '';
      el.connections.classList.remove('stale');
      return true;
    } catch (e) {
      el.connections.classList.add('stale');
      el.connections.dataset.count = '';
      el.connections.textContent = '– online';
      return false;
    }
  }

  // --- connecting ---------------------------------------------------------
  function clearRetry() {
    if (retryTimer !== null) clearTimeout(retryTimer);
    if (countdownTimer !== null) clearInterval(countdownTimer);
    retryTimer = countdownTimer = null;
    el.retry.hidden = true;
  }

  function connect() {
    clearRetry();
    if (ws) { // drop a socket still around without letting it schedule a retry
      const old = ws;
      ws = null;
      old.onopen = old.onmessage = old.onclose = null;
      try { old.close(1000, 'reconnecting'); } catch (e) { /* already closed */ }
      connectionEnded();
    }
    setState(everConnected ? 'reconnecting' : 'connecting');

    // Where this connection resumes; fixed now, as epoch and lastId move on.
    const since = epoch !== null ? { epoch, lastId } : null;
    replay = null;

    let sock;
    try {
      sock = openLink(transport, since);
    } catch (e) {
      addLine('err', 'cannot connect via ' + TRANSPORTS[transport] + ': ' + e.message);
      setState('disconnected');
      return;
    }
    el.endpoint.textContent = TRANSPORTS[transport] + ' · ' + shown(sock.url) +
      (transport === 'websocket' ? ' · ' + SUBPROTOCOL : '');
    el.endpoint.dataset.transport = transport;
    ws = sock;
    let opened = false;

    sock.onopen = () => {
      if (ws !== sock) return;
      opened = true;
      everConnected = true;
      attempt = 0; // a successful open resets the backoff
      failLine = null;
      clearRetry();
      setState('connected');
      el.closeInfo.hidden = true;
      delete el.closeInfo.dataset.code;
      el.hint.hidden = true;
      addLine('sys', 'connected via ' + TRANSPORTS[transport] +
        (since !== null ? ', resuming after message #' + since.lastId : ''));
      refreshStatus();
    };

    // Every frame is one JSON object. A chat line that looks like JSON
    // ({"type":"welcome"} typed by someone) arrives inside a message's
    // "text", so it can never pass for the server's own objects.
    sock.onmessage = (msg, raw) => {
      if (ws !== sock) return;
      switch (msg && msg.type) {
        case 'welcome': onWelcome(msg, since); break;
        case 'message': onChatMessage(msg); break;
        case 'ack': onAck(msg); break;
        case 'reset': onReset(msg); break;
        default: console.warn('miochat: not a miochat.v1 object, ignored:', raw);
      }
    };

    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      connectionEnded();
      onClosed(ev, opened);
    };
  }

  function describeClose(ev) {
    let s = ev.code + ' ' + closeMeaning(ev.code);
    if (ev.reason) s += ' — “' + ev.reason + '”';
    return s;
  }

  function showCloseInfo(prefix, ev) {
    el.closeInfo.textContent = prefix + describeClose(ev);
    el.closeInfo.dataset.code = String(ev.code);
    el.closeInfo.dataset.reason = ev.reason || '';
    el.closeInfo.hidden = false;
  }

  function onClosed(ev, opened) {
    setState('disconnected');
    if (opened) {
      // An established connection ended: that is the news, keep it in view
      // while later attempts fail (they would only say 1006 again).
      showCloseInfo('closed: ', ev);
      addLine(ev.code === 1000 ? 'sys' : 'err', 'disconnected: ' + describeClose(ev));
    } else {
      attempt += 1;
      if (!everConnected) showCloseInfo('could not connect: ', ev);
      // Repeated failures update one line ("×3") instead of filling the log.
      const again = failLine !== null && failLine === el.log.lastElementChild;
      failCount = again ? failCount + 1 : 1;
      const text = 'could not connect (' + ev.code + ' ' + closeMeaning(ev.code) + ')' +
        (failCount > 1 ? ' ×' + failCount : '');
      if (again) {
        failLine.querySelector('.text').textContent = text;
        failLine.querySelector('.time').textContent = timeNow();
      } else {
        failLine = addLine('err', text);
      }
      // A browser never learns why a handshake failed (an HTTP 401 and a
      // dead server both read 1006). Ask /status: if the server answers
      // HTTP, it is up and refused the upgrade, most likely for the token.
      refreshStatus().then((httpUp) => {
        if (ws || !httpUp) {
          el.hint.hidden = true;
          return;
        }
        const code = (t) => Object.assign(document.createElement('code'), { textContent: t });
        if (token === null) {
          el.hint.replaceChildren('The server is up but refused the WebSocket handshake. ' +
            'If it was started with ', code('--token'), ', open this page as ', code('/?token=…'), '.');
        } else {
          el.hint.replaceChildren('The server is up but refused the WebSocket handshake: ' +
            'is the ', code('?token='), ' in this page’s address the right one?');
        }
        el.hint.hidden = false;
      });
    }
    if (opened) refreshStatus();
    if (autoReconnect) {
      scheduleRetry();
    } else {
      el.retry.textContent = 'offline: press Reconnect to connect again';
      delete el.retry.dataset.ms;
      el.retry.hidden = false;
    }
  }

  function backoffDelay(n) {
    const base = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * Math.pow(2, n));
    return Math.round(base * (0.75 + Math.random() * 0.25));
  }

  function scheduleRetry() {
    clearRetry();
    const delay = backoffDelay(attempt);
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
    const tick = () => {
      const left = Math.max(0, retryAt - Date.now());
      el.retry.textContent = 'reconnecting in ' + Math.max(1, Math.ceil(left / 1000)) + ' s';
      el.retry.dataset.ms = String(left);
    };
    tick();
    el.retry.hidden = false;
    countdownTimer = setInterval(tick, 250);
  }

  // --- sending ------------------------------------------------------------
  let flashTimer = null;
  function refuse(reason) {
    el.composer.classList.remove('refused');
    void el.composer.offsetWidth; // restart the shake animation
    el.composer.classList.add('refused');
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => el.composer.classList.remove('refused'), 600);
    el.input.setAttribute('aria-invalid', 'true');
    el.input.placeholder = reason;
    el.input.focus();
  }

  el.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = el.input.value;
    if (text.trim() === '') {
      refuse('Nothing to send: type a message first');
      return;
    }
    if (!ws || !ws.open) {
      // Keep the text so it can be sent once the connection is back.
      refuse('Not connected');
      addLine('err', 'not sent (not connected): ' + text);
      return;
    }
    // Shown at once, marked pending until the server's ack says it is stored.
    const li = addLine('out', text, myName ?? 'you');
    setOwnState(li, 'pending');
    const entry = { li, text, name: myName, sock: ws, old: false };
    pending.push(entry);
    // Over HTTP the POST itself can be refused (a 413, a 401): then no ack
    // will ever come for it.
    Promise.resolve(ws.send(text)).catch((e) => {
      const at = pending.indexOf(entry);
      if (at >= 0) pending.splice(at, 1);
      setOwnState(li, 'unsure');
      addLine('err', 'not sent: ' + e.message);
    });
    el.input.value = '';
    el.input.removeAttribute('aria-invalid');
    el.input.placeholder = 'Type a message, Enter to send';
    el.input.focus();
  });

  el.input.addEventListener('input', () => el.input.removeAttribute('aria-invalid'));

  // --- choosing a name ----------------------------------------------------
  // Applied with Enter or when the field loses focus. The server takes a
  // name only at the upgrade, so a new name means a new connection; it
  // resumes after the last id seen, so nothing said meanwhile is missed.
  function applyName() {
    const wanted = el.name.value.trim();
    const problem = nameProblem(wanted);
    if (problem !== null) {
      // Enter fires both change and submit: say it once.
      if (el.name.getAttribute('aria-invalid') !== 'true') addLine('err', 'name not changed: ' + problem);
      el.name.setAttribute('aria-invalid', 'true');
      el.name.title = problem;
      return;
    }
    el.name.removeAttribute('aria-invalid');
    el.name.title = '';
    el.name.value = wanted;
    if (wanted === storedName()) return;
    storeName(wanted);
    const what = wanted === '' ? 'a guest name' : 'the name ' + wanted;
    if (ws) {
      addLine('sys', 'reconnecting to use ' + what);
      connect();
    } else {
      addLine('sys', 'saved: the next connection uses ' + what);
    }
  }

  el.nameForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyName();
    el.input.focus();
  });
  el.name.addEventListener('change', applyName);
  el.name.addEventListener('input', () => el.name.removeAttribute('aria-invalid'));

  el.reconnect.addEventListener('click', () => {
    autoReconnect = true;
    addLine('sys', 'reconnecting now');
    connect();
  });

  el.disconnect.addEventListener('click', () => {
    autoReconnect = false;
    clearRetry();
    if (ws) ws.close(1000, 'user disconnected');
    else setState('disconnected');
  });

  // A new transport means a new link; it resumes after the last id seen,
  // as a reconnect does, so nothing said meanwhile is missed.
  el.transport.addEventListener('change', () => {
    storeTransport(el.transport.value);
    addLine('sys', 'switching to ' + TRANSPORTS[transport]);
    autoReconnect = true;
    connect();
  });

  // --- go -----------------------------------------------------------------
  transport = pickTransport();
  el.transport.value = transport;
  el.name.value = storedName();
  connect();
  refreshStatus();
  setInterval(refreshStatus, STATUS_EVERY_MS);
  el.input.focus();
})();
