// Berth's classroom page: makes or resumes the session, one terminal tab per
// node, countdown with "extend", "reset lab", and a WebSocket per terminal
// speaking typed messages with acknowledgement-based flow control.
'use strict';

const statusEl = document.getElementById('status');
const say = (text) => { statusEl.textContent = text || ''; };

// The terminal's font follows the page's: larger on a projector-sized
// screen (the same breakpoint as lesson.css), so the back row can read it.
const bigScreen = window.matchMedia('(min-width: 1800px)');
const fontSize = () => (bigScreen.matches ? 19 : 15);
const terminalBox = document.getElementById('terminal');
const { term, fit } = berthTerminalIn(terminalBox, { fontSize: fontSize() });
bigScreen.addEventListener('change', () => { term.options.fontSize = fontSize(); fit.fit(); });
window.berthTerminal = term; // for tests and the instructor tools

let session = null;
let node = null;
let socket = null;
let received = 0;      // output bytes processed on this connection (skips included)
let acked = 0;
let retryDelay = 500;
let reconnectTimer = null;

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin' });
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  return { status: r.status, data, retryAfter: Number(r.headers.get('retry-after') || 0) };
}

async function ensureSession() {
  let r = await api('GET', '/api/session');
  if (r.status === 200) return r.data;
  for (;;) {
    r = await api('POST', '/api/session', {});
    if (r.status === 201) return r.data;
    if (r.status === 503 || r.status === 429) {
      let left = r.retryAfter || 10;
      while (left > 0) {
        say((r.status === 503 ? 'The classroom is full' : 'Too many new sessions') + ' — retrying in ' + left + ' s');
        await new Promise((ok) => setTimeout(ok, 1000));
        left -= 1;
      }
      continue;
    }
    throw new Error((r.data && r.data.message) || ('HTTP ' + r.status));
  }
}

function showSession(s) {
  session = s;
  document.getElementById('resume-url').value = s.resume_url;
  const tabs = document.getElementById('tabs');
  tabs.replaceChildren(...s.nodes.map((n) => {
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = n; b.setAttribute('role', 'tab');
    b.setAttribute('aria-selected', String(n === node));
    b.onclick = () => { if (n !== node) { node = n; showSession(session); connect(); } };
    return b;
  }));
}

// A lab lost with its runner (a classroom past one host): say so, stop
// reconnecting, and offer a new lab (the learner's progress is kept).
function showLost(message) {
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  clearTimeout(reconnectTimer);
  let el = document.getElementById('lost');
  if (!el) {
    el = document.createElement('div');
    el.id = 'lost'; el.className = 'notice'; el.setAttribute('role', 'alert');
    const p = document.createElement('p');
    const b = document.createElement('button');
    b.type = 'button'; b.textContent = 'Start again';
    b.onclick = async () => {
      b.disabled = true; say('Preparing a new lab…');
      const r = await api('POST', '/api/session/reset');
      b.disabled = false;
      if (r.status === 200) {
        el.hidden = true;
        node = node && r.data.nodes.includes(node) ? node : r.data.nodes[0];
        showSession(r.data); connect();
      }
      else say((r.data && r.data.message) || 'Starting again failed');
    };
    el.append(p, b);
    document.getElementById('status').before(el);
  }
  el.querySelector('p').textContent = message[0].toUpperCase() + message.slice(1) + '.';
  el.hidden = false;
  say('');
}

function send(msg) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
}

function connect() {
  clearTimeout(reconnectTimer);
  if (socket) { socket.onclose = null; socket.close(); }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(scheme + '//' + location.host + '/ws/terminal/' + encodeURIComponent(node));
  ws.binaryType = 'arraybuffer';
  socket = ws; received = 0; acked = 0;
  ws.onopen = () => { retryDelay = 500; say(''); };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== 'string') {
      const bytes = new Uint8Array(ev.data);
      term.write(bytes, () => {
        received += bytes.length;
        // Acknowledge once a quarter window is drawn: the server sends more.
        if (received - acked >= 16384 || received === bytes.length) { acked = received; send({ type: 'ack', bytes: acked }); }
        else setTimeout(() => { if (acked < received) { acked = received; send({ type: 'ack', bytes: acked }); } }, 50);
      });
      return;
    }
    const m = JSON.parse(ev.data);
    if (m.type === 'hello') { term.reset(); fit.fit(); send({ type: 'resize', rows: term.rows, cols: term.cols }); }
    else if (m.type === 'skipped') { received += m.bytes; term.write('\r\n\x1b[33m[… ' + m.bytes + ' bytes of output skipped …]\x1b[0m\r\n'); }
    else if (m.type === 'exit') { term.write('\r\n\x1b[2m[the shell exited with ' + m.code + '; press Enter for a new one]\x1b[0m\r\n'); ws.exited = true; }
    else if (m.type === 'error') { say(m.message); }
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    say('Connection lost — reconnecting…');
    reconnectTimer = setTimeout(async () => {
      const r = await api('GET', '/api/session');
      if (r.status !== 200) { await start(); return; }
      if (r.data.lost) { showLost(r.data.lost); return; }
      connect();
    }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  };
}

term.onData((data) => {
  if (socket && socket.exited) { socket.exited = false; send({ type: 'restart' }); return; }
  berthSendInput(send, data, say);
});
term.onResize(({ rows, cols }) => send({ type: 'resize', rows, cols }));
window.addEventListener('resize', () => fit.fit());
// The box also changes without a window resize (tabs, port links, the
// lesson column): refit so xterm's size, and so the shell's, follow it.
if (window.ResizeObserver) new ResizeObserver(() => fit.fit()).observe(terminalBox);
setInterval(() => send({ type: 'ping' }), 20000);

async function tick() {
  if (!session) return;
  const r = await api('GET', '/api/session');
  if (r.status !== 200) { say('Your lab has ended.'); return; }
  if (r.data.lost) { session = r.data; showLost(r.data.lost); return; }
  // Nodes added to the session (a lesson that needs more) get their tabs.
  if (r.data.nodes.join() !== session.nodes.join()) showSession(r.data);
  session = r.data;
  const s = session.ends_in_secs;
  const el = document.getElementById('countdown');
  el.textContent = (session.ends_because === 'idle' ? 'Idle — ends in ' : 'Ends in ') +
    Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  el.className = s < 300 ? 'soon' : '';
}
setInterval(tick, 5000);

document.getElementById('extend').onclick = async () => { await api('POST', '/api/session/extend'); tick(); };
document.getElementById('reset').onclick = async () => {
  if (!confirm('Throw this lab away and start a fresh one?')) return;
  say('Resetting the lab…');
  const r = await api('POST', '/api/session/reset');
  if (r.status === 200) { showSession(r.data); connect(); } else say((r.data && r.data.message) || 'Reset failed');
};

async function start() {
  say('Preparing your lab…');
  try {
    const s = await ensureSession();
    node = node && s.nodes.includes(node) ? node : s.nodes[0];
    showSession(s);
    if (s.lost) showLost(s.lost); else connect();
    tick();
  } catch (e) { say('Could not start a lab: ' + e.message); }
}
start();
