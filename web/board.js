// The live progress board: a snapshot over the WebSocket, then `pass` and
// `join` messages turn cells green and add rows without a reload. Who is
// stuck longest is recomputed every second; a learner's name opens their
// terminal read-only (or to help).
'use strict';

const id = Number(location.pathname.split('/')[2]);
const state = { columns: [], rows: new Map(), skew: 0 };
window.berthBoard = state; // for tests

document.getElementById('csv').href = '/api/workshops/' + id + '/board.csv';
document.getElementById('cards').href = '/workshops/' + id + '/cards';
document.getElementById('present').href = '/workshops/' + id + '/present';

const el = (tag, attrs, text) => { const e = document.createElement(tag); Object.assign(e, attrs || {}); if (text !== undefined) e.textContent = text; return e; };
const now = () => Date.now() / 1000 + state.skew;
const mins = (s) => s < 60 ? Math.floor(s) + ' s' : Math.floor(s / 60) + ' min';

function cellId(learner, key) { return 'cell-' + learner + '-' + key.replace(/[^a-zA-Z0-9_-]/g, '_'); }

function renderHead() {
  const head = document.getElementById('head');
  head.replaceChildren(el('th', {}, 'Learner'), ...state.columns.map((c) => el('th', { title: c.key, scope: 'col' }, c.title)), el('th', {}, 'Done'));
}

function stuckOn(row) { const c = state.columns.find((c) => !row.passes[c.key]); return c ? c.key : null; }

function renderRow(row) {
  let tr = document.getElementById('row-' + row.id);
  if (!tr) { tr = el('tr', { id: 'row-' + row.id }); document.getElementById('rows').appendChild(tr); }
  const name = el('th', { scope: 'row' });
  const a = el('a', { href: '#', className: 'learner' }, row.name);
  a.onclick = (ev) => { ev.preventDefault(); openShoulder(row); };
  name.appendChild(a);
  const cells = state.columns.map((c) => {
    const passed = row.passes[c.key];
    const td = el('td', { id: cellId(row.id, c.key), className: passed ? 'cell passed' : (stuckOn(row) === c.key ? 'cell current' : 'cell') }, passed ? '✓' : '');
    td.dataset.key = c.key; td.dataset.learner = row.id;
    if (passed) td.title = 'passed ' + passed;
    return td;
  });
  tr.replaceChildren(name, ...cells, el('td', { className: 'done' }, String(Object.keys(row.passes).length)));
}

function renderCounts() {
  const counts = document.getElementById('counts');
  counts.replaceChildren(el('th', {}, 'Passed'), ...state.columns.map((c) => {
    let n = 0; for (const r of state.rows.values()) if (r.passes[c.key]) n++;
    return el('td', { className: 'count', id: 'count-' + c.key.replace(/[^a-zA-Z0-9_-]/g, '_') }, n + '/' + state.rows.size);
  }), el('td'));
}

function renderStuck() {
  const list = [...state.rows.values()].map((r) => ({ r, on: stuckOn(r) })).filter((x) => x.on)
    .sort((a, b) => a.r.stuck_since - b.r.stuck_since).slice(0, 10);
  document.getElementById('stuck').replaceChildren(...list.map(({ r, on }) => {
    const c = state.columns.find((c) => c.key === on);
    return el('li', {}, r.name + ' — ' + (c ? c.title : on) + ' for ' + mins(now() - r.stuck_since));
  }));
}

function renderAll() { renderHead(); document.getElementById('rows').replaceChildren(); for (const r of state.rows.values()) renderRow(r); renderCounts(); renderStuck(); }

function onMessage(m) {
  if (m.now) state.skew = m.now - Date.now() / 1000;
  if (m.type === 'snapshot') {
    document.getElementById('title').textContent = m.workshop.title;
    document.getElementById('code').textContent = 'code ' + m.workshop.code;
    state.columns = m.columns; state.rows = new Map(m.rows.map((r) => [r.id, r]));
    renderAll();
  } else if (m.type === 'join') {
    const r = { id: m.learner.id, name: m.learner.name, joined_at: m.learner.joined_at, passes: {}, stuck_since: m.learner.joined_at };
    state.rows.set(r.id, r); renderRow(r); renderCounts(); renderStuck();
  } else if (m.type === 'pass') {
    const r = state.rows.get(m.learner); if (!r) return;
    r.passes[m.key] = m.at; r.stuck_since = Math.max(r.stuck_since, Math.floor(Date.parse(m.at) / 1000) || 0);
    renderRow(r); renderCounts(); renderStuck();
    const cell = document.getElementById(cellId(r.id, m.key)); if (cell) cell.classList.add('flash');
  } else if (m.type === 'deleted') {
    document.getElementById('live').textContent = 'this workshop was deleted';
  }
}

let delay = 500;
function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(scheme + '//' + location.host + '/ws/workshops/' + id + '/board');
  ws.onopen = () => { delay = 500; document.getElementById('live').textContent = 'live'; };
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = () => { document.getElementById('live').textContent = 'reconnecting…'; setTimeout(connect, delay); delay = Math.min(delay * 2, 10000); };
}
connect();
setInterval(renderStuck, 1000);

// Over the shoulder: the learner's terminal, read-only unless "help".
let shoulder = null; let shoulderTerm = null; let shoulderRow = null;
function openShoulder(row) {
  shoulderRow = row;
  const box = document.getElementById('shoulder'); box.hidden = false;
  document.getElementById('shoulder-title').textContent = 'Over the shoulder: ' + row.name + ' ';
  const map = document.createElement('a');
  map.href = '/workshops/' + id + '/learners/' + row.id + '/map'; map.target = '_blank'; map.textContent = 'Lab map';
  document.getElementById('shoulder-title').append(map);
  if (shoulder) shoulder.close();
  if (shoulderTerm) shoulderTerm.dispose();
  document.getElementById('shoulder-term').replaceChildren();
  shoulderTerm = berthXterm(document.getElementById('shoulder-term'), 13, false);
  window.berthShoulder = shoulderTerm; // for tests
  const help = document.getElementById('help').checked;
  shoulder = berthConnect(shoulderTerm, '/ws/workshops/' + id + '/learners/' + row.id + '/terminal/node1' + (help ? '?mode=help' : ''),
    { readOnly: !help, onStatus: (t) => { document.getElementById('live').textContent = t || 'live'; } });
}
document.getElementById('help').onchange = () => { if (shoulderRow) openShoulder(shoulderRow); };
document.getElementById('shoulder-close').onclick = () => { if (shoulder) shoulder.close(); shoulder = null; document.getElementById('shoulder').hidden = true; };
