// Lesson pages: "Run" buttons type a block into a node's terminal, "Check"
// asks the server to grade an exercise and marks each check, published
// ports are listed as preview links. Rides on app.js (window.berthTerminal).
'use strict';

(function () {
  const slug = document.body.dataset.slug;

  function selectNode(node) {
    if (!node) return;
    const tab = [...document.querySelectorAll('#tabs button')].find((b) => b.textContent === node);
    if (tab && tab.getAttribute('aria-selected') !== 'true') tab.click();
  }

  function typeIntoTerminal(text) {
    const term = window.berthTerminal;
    if (!term) return;
    const data = text.replace(/\r?\n/g, '\r') + (text.endsWith('\n') ? '' : '\r');
    if (typeof term.input === 'function') term.input(data, true); else term.paste(data);
    term.focus();
  }

  document.querySelectorAll('button.run').forEach((b) => {
    b.addEventListener('click', () => {
      const node = b.dataset.node;
      if (node) {
        selectNode(node);
        // The tab reconnects: wait for its prompt's first bytes.
        setTimeout(() => typeIntoTerminal(b.dataset.command), 400);
      } else {
        typeIntoTerminal(b.dataset.command);
      }
    });
  });

  async function check(exercise, quiet) {
    const box = document.querySelector('section.exercise[data-exercise="' + CSS.escape(exercise) + '"]');
    const button = box.querySelector('button.check');
    if (!quiet) { button.disabled = true; button.textContent = 'Checking…'; }
    try {
      const r = await fetch('/api/lessons/' + encodeURIComponent(slug) + '/check', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'content-type': 'application/json' }, body: JSON.stringify({ exercise }),
      });
      const data = await r.json();
      if (!r.ok) { if (!quiet) box.querySelector('.checks').title = data.message || ('HTTP ' + r.status); return; }
      const result = data.exercises[0];
      for (const c of result.checks) {
        const li = box.querySelector('li[data-check="' + CSS.escape(c.id) + '"]');
        if (!li) continue;
        li.classList.toggle('passed', c.passed);
        li.classList.toggle('failed', !c.passed);
        li.querySelector('.mark').textContent = c.passed ? '✓' : '✗';
        li.querySelector('.detail').textContent = c.passed ? '' : ' — expected ' + c.expected + '; found ' + c.found;
      }
      box.classList.toggle('passed', result.passed);
    } finally {
      button.disabled = false; button.textContent = 'Check';
    }
  }

  document.querySelectorAll('button.check').forEach((b) => {
    b.addEventListener('click', () => check(b.dataset.exercise, false));
  });

  // Background checks: unfinished exercises turn green on their own.
  setInterval(() => {
    if (document.hidden) return;
    document.querySelectorAll('section.exercise:not(.passed)').forEach((s) => check(s.dataset.exercise, true));
  }, 15000);

  async function ports() {
    const r = await fetch('/api/ports', { credentials: 'same-origin' });
    if (!r.ok) return;
    const list = await r.json();
    const el = document.getElementById('ports');
    el.replaceChildren(...list.filter((p) => p.url).map((p) => {
      const a = document.createElement('a');
      a.href = p.url; a.target = '_blank'; a.rel = 'noopener';
      a.textContent = ':' + p.host_port; a.title = p.container + ' port ' + p.container_port + ' on ' + p.node;
      return a;
    }));
  }
  setInterval(ports, 5000);
  setTimeout(ports, 1000);
})();
