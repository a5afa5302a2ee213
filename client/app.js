// miochat browser client: plain JavaScript, no framework, no build step.
//
// One WebSocket at a time to ws(s)://<this host>/ (keeping ?token= from the
// page URL), a log of what went each way, the connection state as a badge,
// the close code in words, and automatic reconnect with exponential backoff.
// Everything that came from the network is inserted with textContent, never
// innerHTML, so a message can never become markup.
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
  };

  // --- where to connect ---------------------------------------------------
  const pageParams = new URLSearchParams(location.search);
  const token = pageParams.get('token');
  const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/' +
    (token !== null ? '?token=' + encodeURIComponent(token) : '');
  // Shown under the composer; the token itself is not echoed on screen.
  el.endpoint.textContent = wsUrl.replace(/token=[^&]*/, 'token=…');

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

  // kind: 'out' (→ sent), 'in' (← received), 'sys' (about the connection),
  // 'err' (something went wrong). Returns the <li> so it can be updated.
  function addLine(kind, text) {
    const nearBottom = el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 40;
    const li = document.createElement('li');
    li.className = 'line ' + kind;
    li.dataset.dir = kind;
    const mark = document.createElement('span');
    mark.className = 'mark';
    mark.textContent = kind === 'out' ? '→' : kind === 'in' ? '←' : kind === 'err' ? '!' : '•';
    mark.setAttribute('aria-label', kind === 'out' ? 'sent' : kind === 'in' ? 'received' : kind === 'err' ? 'error' : 'info');
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    const when = document.createElement('time');
    when.className = 'time';
    when.textContent = timeNow();
    li.append(mark, body, when);
    el.log.append(li);
    if (nearBottom || kind === 'out') el.log.scrollTop = el.log.scrollHeight;
    return li;
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
      const n = Number(body.connections);
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
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try { old.close(1000, 'reconnecting'); } catch (e) { /* already closed */ }
    }
    setState(everConnected ? 'reconnecting' : 'connecting');

    let sock;
    try {
      sock = new WebSocket(wsUrl);
    } catch (e) {
      addLine('err', 'cannot open ' + wsUrl + ': ' + e.message);
      setState('disconnected');
      return;
    }
    sock.binaryType = 'arraybuffer';
    ws = sock;
    let opened = false;
    let first = true; // the first message of a connection may be the welcome

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
      addLine('sys', 'connected to ' + el.endpoint.textContent);
      refreshStatus();
    };

    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      const wasFirst = first;
      first = false;
      if (typeof ev.data !== 'string') {
        const n = ev.data.byteLength !== undefined ? ev.data.byteLength : ev.data.size;
        addLine('in', '[binary ' + n + ' bytes]');
        return;
      }
      // Only the server's first message can be the welcome: a later
      // {"type":"welcome"} is a chat line someone typed and is shown as such.
      if (wasFirst) {
        let msg = null;
        try { msg = JSON.parse(ev.data); } catch (e) { /* plain chat text */ }
        if (msg && msg.type === 'welcome') {
          addLine('sys', 'welcome: ' + String(msg.message ?? ''));
          return;
        }
      }
      addLine('in', ev.data);
    };

    sock.onerror = () => {
      // The browser tells nothing more here on purpose; onclose follows.
    };

    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
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
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      // Keep the text so it can be sent once the connection is back.
      refuse('Not connected');
      addLine('err', 'not sent (not connected): ' + text);
      return;
    }
    ws.send(text);
    addLine('out', text);
    el.input.value = '';
    el.input.removeAttribute('aria-invalid');
    el.input.placeholder = 'Type a message, Enter to send';
    el.input.focus();
  });

  el.input.addEventListener('input', () => el.input.removeAttribute('aria-invalid'));

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

  // --- go -----------------------------------------------------------------
  connect();
  refreshStatus();
  setInterval(refreshStatus, STATUS_EVERY_MS);
  el.input.focus();
})();
