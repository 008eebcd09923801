// The instructor's demo terminal in a large font for the projector; every
// learner's "Presenter" tab shows the same terminal read-only.
'use strict';

const id = Number(location.pathname.split('/')[2]);
const status = (t) => { document.getElementById('status').textContent = t || ''; };
let term = null; let conn = null;

async function start() {
  status('Starting the demo lab…');
  const r = await berthApi('POST', '/api/workshops/' + id + '/demo');
  if (r.status !== 200) { status((r.data && r.data.message) || ('HTTP ' + r.status)); return; }
  document.getElementById('start').hidden = true;
  if (conn) conn.close();
  if (term) term.dispose();
  term = berthXterm(document.getElementById('terminal'), Number(document.getElementById('font').value), false);
  window.berthTerminal = term; // for tests
  conn = berthConnect(term, '/ws/workshops/' + id + '/demo/' + encodeURIComponent(r.data.nodes[0] || 'node1'), { onStatus: status });
  status('Every learner sees this terminal in their Presenter tab.');
  term.focus();
}

document.getElementById('start').onclick = start;
document.getElementById('font').oninput = (ev) => { if (term) { term.options.fontSize = Number(ev.target.value); term.fitNow(); conn.resize(); } };
berthApi('GET', '/api/workshops/' + id).then((r) => {
  if (r.status === 200) { document.getElementById('title').textContent = r.data.title + ' — projector'; if (r.data.demo) start(); }
});
