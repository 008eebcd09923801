// A learner's workshop page: their own lab terminal, the "Presenter" tab
// with the instructor's demo terminal (read-only, large font; a selection
// can be copied or pasted into the learner's lab), the workshop's lessons,
// and a visible notice while the instructor can type in their terminal.
'use strict';

const status = (t) => { document.getElementById('status').textContent = t || ''; };
const el = (tag, attrs, text) => { const e = document.createElement(tag); Object.assign(e, attrs || {}); if (text !== undefined) e.textContent = text; return e; };

// Larger on a projector-sized screen, as the lesson pages' terminal.
const lab = berthXterm(document.getElementById('lab-term'), window.matchMedia('(min-width: 1800px)').matches ? 19 : 15, false);
window.berthTerminal = lab; // for tests
const labConn = berthConnect(lab, '/ws/terminal/node1', { onStatus: status });

let presenter = null; let presenterConn = null;
window.berthPresenter = null;
function showPresenter() {
  if (!presenter) {
    presenter = berthXterm(document.getElementById('presenter-term'), 20, true);
    window.berthPresenter = presenter;
  }
  presenter.fitNow();
  if (!presenterConn) presenterConn = berthConnect(presenter, '/ws/workshop/presenter', { readOnly: true, onStatus: status });
}

function select(tab) {
  const isLab = tab === 'lab';
  document.getElementById('tab-lab').setAttribute('aria-selected', String(isLab));
  document.getElementById('tab-presenter').setAttribute('aria-selected', String(!isLab));
  document.getElementById('pane-lab').hidden = !isLab;
  document.getElementById('pane-presenter').hidden = isLab;
  if (isLab) { lab.fitNow(); labConn.resize(); lab.focus(); } else showPresenter();
}
document.getElementById('tab-lab').onclick = () => select('lab');
document.getElementById('tab-presenter').onclick = () => select('presenter');

document.getElementById('copy').onclick = async () => {
  const text = presenter && presenter.getSelection();
  if (!text) { status('Select a command in the presenter terminal first.'); return; }
  try { await navigator.clipboard.writeText(text); status('Copied.'); } catch (e) { status('The browser refused the clipboard; use Ctrl+Shift+C.'); }
};
document.getElementById('paste').onclick = () => {
  const text = presenter && presenter.getSelection();
  if (!text) { status('Select a command in the presenter terminal first.'); return; }
  labConn.input(text.replace(/\n/g, ' ').trim());
  select('lab');
};

let demoWasLive = false;
async function refresh() {
  const r = await berthApi('GET', '/api/workshop');
  if (r.status !== 200) { status((r.data && r.data.message) || 'Your lab has ended.'); return; }
  const w = r.data;
  document.getElementById('title').textContent = w.workshop.title;
  document.getElementById('who').textContent = w.learner.name || '';
  document.getElementById('lessons').replaceChildren(...w.lessons.map((l) => { const li = el('li'); li.appendChild(el('a', { href: l.url, target: '_blank' }, l.title)); return li; }));
  const help = document.getElementById('helping');
  help.hidden = !w.helping;
  help.textContent = w.helping ? 'Your instructor (' + w.helping + ') can type in your terminal right now to help you.' : '';
  const reg = document.getElementById('registry');
  reg.hidden = !w.shared_registry;
  if (w.shared_registry) reg.textContent = 'Shared registry: docker push registry.local:5000/' + w.shared_registry + '/<name>';
  const tab = document.getElementById('tab-presenter');
  tab.classList.toggle('live', w.demo);
  if (w.demo && !demoWasLive && presenterConn) { presenterConn.close(); presenterConn = null; if (!document.getElementById('pane-presenter').hidden) showPresenter(); }
  demoWasLive = w.demo;
}
refresh();
setInterval(refresh, 3000);
