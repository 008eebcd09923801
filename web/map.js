// The lab map on a lesson page: a "Map" tab beside the terminal and the
// `lab-map` figures in the lesson's text. One server-sent event stream
// (/api/map/stream, or the page's data-map-source for an instructor's view)
// brings the session's model each time the engine changes it; every view
// redraws (map-draw.js), what changed since the last model glows for a
// moment, and a hidden table under each view says the same for readers.
'use strict';

(function () {
  const draw = window.berthMapDraw;
  // Whose map: the learner's own; `page` (an instructor's page for one
  // learner: the same path under /api); `demo` (the projector's demo lab).
  const source = (function () {
    const s = document.body.dataset.mapSource;
    if (s === 'page') return '/api' + location.pathname;
    if (s === 'demo') return '/api/workshops/' + encodeURIComponent(location.pathname.split('/')[2]) + '/demo/map';
    return '/api/map/stream';
  })();
  const bigScreen = window.matchMedia('(min-width: 1800px)');
  const views = []; // { root, focus, svgBox, table, visible() }
  const state = { model: null, rev: 0, hello: { preview: null, session: null }, log: [] };
  window.berthMap = state; // for tests and the benchmark

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  }

  // ---- Views ---------------------------------------------------------

  function addView(root, focus, visible) {
    root.classList.add('lab-map-root');
    const svgBox = h('div', { class: 'lab-map-draw' });
    const status = h('p', { class: 'lab-map-status', role: 'status', 'aria-live': 'polite' });
    const table = h('div', { class: 'visually-hidden lab-map-text' });
    root.replaceChildren(status, svgBox, table);
    // Each view remembers what it drew last (data-key → data-sig): what
    // differs next time glows, whether or not it was on screen meanwhile.
    const v = { root, focus, svgBox, status, table, visible, sigs: new Map(), primed: false };
    views.push(v);
    // Enter on a container with a published port opens its first one.
    svgBox.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter') return;
      const g = ev.target.closest && ev.target.closest('g.container');
      const link = g && g.querySelector('a.port-link');
      if (link && ev.target === g) { ev.preventDefault(); window.open(link.getAttribute('href'), '_blank', 'noopener'); }
    });
    return v;
  }

  // The tab beside the terminal: a pane of the page's panes (panes.js, the
  // editor's tab strip) when it has them, else a strip of our own with
  // "Terminal" and "Map" (the projector page).
  function addPane() {
    const terminal = document.getElementById('terminal');
    if (!terminal) return null;
    if (window.berthPanes) {
      const pane = h('section', { id: 'map-pane', class: 'map-pane in-panes', 'aria-label': 'Map of your lab' });
      window.berthPanes.add({ id: 'map', label: 'Map', el: pane, onShow: () => { connect(); render(); } });
      // The same ids as our own strip's, for tests and links.
      for (const [id, pid] of [['tab-map', 'map'], ['tab-terminal', 'terminal']]) {
        const b = document.querySelector('.pane-tabs [data-pane="' + pid + '"]');
        if (b && !b.id) { b.id = id; b.setAttribute('aria-controls', pid === 'map' ? 'map-pane' : 'terminal'); }
      }
      addView(pane, 'all', () => !pane.hidden);
      window.berthShowMap = () => window.berthPanes.show('map');
      return pane;
    }
    const main = terminal.parentElement;
    main.classList.add('has-panes');
    let strip = main.querySelector('.pane-tabs');
    if (!strip) {
      strip = h('div', { class: 'pane-tabs map-own-tabs', role: 'tablist', 'aria-label': 'Lab views' });
      const t = h('button', { type: 'button', role: 'tab', id: 'tab-terminal', 'aria-controls': 'terminal', 'aria-selected': 'true' }, 'Terminal');
      strip.append(t);
      main.insertBefore(strip, main.firstChild);
    }
    const tab = h('button', { type: 'button', role: 'tab', id: 'tab-map', 'aria-controls': 'map-pane', 'aria-selected': 'false' }, 'Map');
    strip.append(tab);
    const pane = h('section', { id: 'map-pane', class: 'map-pane', role: 'tabpanel', 'aria-labelledby': 'tab-map', hidden: '' });
    main.append(pane);
    const show = (which) => {
      for (const b of strip.querySelectorAll('[role=tab]')) {
        const on = b === which;
        b.setAttribute('aria-selected', String(on));
        const panel = document.getElementById(b.getAttribute('aria-controls'));
        if (!panel) continue;
        // The terminal keeps its size under the map (a hidden terminal
        // would be fitted to nothing and tell the shell so).
        if (panel.id === 'terminal') panel.classList.toggle('covered', !on); else panel.hidden = !on;
      }
      if (which === tab) { connect(); render(); } else if (window.berthTerminal) window.berthTerminal.focus();
    };
    strip.addEventListener('click', (ev) => { const b = ev.target.closest('[role=tab]'); if (b) show(b); });
    strip.addEventListener('keydown', (ev) => {
      const tabs = [...strip.querySelectorAll('[role=tab]')];
      const i = tabs.indexOf(document.activeElement);
      if (i < 0 || (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft')) return;
      const next = tabs[(i + (ev.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
      next.focus(); show(next);
    });
    addView(pane, 'all', () => !pane.hidden);
    window.berthShowMap = () => show(tab);
    return tab;
  }

  // ---- The text alternative -------------------------------------------

  function table(caption, heads, rows) {
    const t = h('table', {}, h('caption', {}, caption));
    t.append(h('tr', {}, ...heads.map((x) => h('th', { scope: 'col' }, x))));
    for (const r of rows) t.append(h('tr', {}, ...r.map((x) => h('td', {}, x))));
    return t;
  }

  function describe(v, m) {
    const parts = [];
    const all = v.focus === 'all';
    if (all || v.focus === 'networks') {
      parts.push(table('Containers', ['Name', 'Node', 'Image', 'State', 'Networks', 'Published ports', 'Mounts'],
        m.containers.map((c) => [c.name, c.node, c.image, c.state + (c.health ? ' (' + c.health + ')' : ''), c.networks.join(', ') || '—',
          c.ports.map((p) => p.host_port + '→' + p.port + '/' + p.proto).join(', ') || '—',
          c.mounts.map((x) => (x.source || x.kind) + ' at ' + x.target).join(', ') || '—'])));
      parts.push(table('Networks', ['Name', 'Node', 'Driver', 'Subnet'], m.networks.map((n) => [n.name, n.node, n.driver, n.subnet || '—'])));
    }
    if (all || v.focus === 'images' || v.focus.startsWith('image=')) {
      parts.push(table('Images', ['Image', 'Node', 'Layers, bottom first'], m.images.map((i) =>
        [i.tags.join(', ') || '<none> ' + i.id, i.node, i.layers.map((l) => l.slice(0, 8) + ' (' + draw.size(m.layers[l] || 0) + ')').join(', ')])));
    }
    if ((all || v.focus === 'swarm') && m.swarm) {
      parts.push(table('Swarm tasks', ['Task', 'Node', 'Image', 'State'], m.swarm.tasks.map((t) => [t.service + '.' + t.slot, t.node, t.image, t.state])));
    }
    v.table.replaceChildren(...parts);
  }

  // ---- Drawing and what changed ---------------------------------------

  let pending = false;
  function render() {
    if (pending || !state.model) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; renderNow(); });
  }

  function renderNow() {
    const m = state.model;
    // Larger on a projector-sized screen, larger still on the projector page.
    const scale = document.body.dataset.mapSource === 'demo' ? 1.7 : bigScreen.matches ? 1.3 : 1;
    const ctx = { preview: state.hello.preview, session: m.session, scale };
    const changed = new Set();
    for (const v of views) {
      if (!v.visible()) continue;
      const before = v.sigs;
      const after = new Map();
      const focused = document.activeElement && v.svgBox.contains(document.activeElement) ? document.activeElement.getAttribute('data-key') : null;
      const width = Math.max(320, v.svgBox.clientWidth || v.root.clientWidth || 600);
      const svg = draw.draw(m, v.focus, width, ctx);
      for (const g of svg.querySelectorAll('[data-key]')) {
        const key = g.getAttribute('data-key'); const sig = g.getAttribute('data-sig');
        after.set(key, sig);
        if (v.primed && before.get(key) !== sig) { g.classList.add('changed'); changed.add(key); }
      }
      v.svgBox.replaceChildren(svg);
      if (focused) { const again = svg.querySelector('[data-key="' + CSS.escape(focused) + '"]'); if (again) again.focus(); }
      describe(v, m);
      // Containers (once each, wherever drawn), volumes and swarm tasks
      // that went away are named for a moment.
      const name = (k) => k.split('/')[2].split('@')[0];
      const gone = [...new Set([...before.keys()].filter((k) => !after.has(k) && /^(container|volume)\//.test(k)).map(name))]
        .filter((nm) => ![...after.keys()].some((k) => /^(container|volume)\//.test(k) && name(k) === nm));
      if (v.primed && gone.length) {
        v.status.textContent = 'Removed: ' + gone.join(', ');
        clearTimeout(v.clear);
        v.clear = setTimeout(() => { v.status.textContent = ''; }, 6000);
      }
      v.sigs = after;
      v.primed = true;
    }
    const at = performance.timeOrigin + performance.now();
    state.log.push({ rev: state.rev, at, changed: changed.size });
    if (state.log.length > 200) state.log.splice(0, 100);
    // The benchmark's hook: when (wall-clock ms) each model reached the SVG.
    if (typeof state.onRender === 'function') state.onRender(at);
    document.body.dataset.mapRev = String(state.rev);
  }

  // ---- The stream --------------------------------------------------------

  let events = null;
  let retry = 1000;
  function connect() {
    if (events) return;
    events = new EventSource(source, { withCredentials: true });
    events.addEventListener('hello', (e) => { state.hello = JSON.parse(e.data); retry = 1000; });
    events.addEventListener('model', (e) => {
      state.model = JSON.parse(e.data);
      state.rev = Number(e.lastEventId) || state.rev + 1;
      state.received = performance.timeOrigin + performance.now();
      render();
    });
    events.onerror = () => {
      // A refused stream (no session yet, too many maps) is not retried by
      // the browser: try again a little later.
      if (events.readyState === EventSource.CLOSED) {
        events = null;
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 15000);
      }
    };
  }

  // ---- Start -------------------------------------------------------------

  for (const fig of document.querySelectorAll('figure.lab-map')) {
    const view = fig.querySelector('.lab-map-view');
    if (view) addView(view, fig.dataset.focus || 'all', () => true);
  }
  const standalone = document.getElementById('lab-map');
  if (standalone) addView(standalone, standalone.dataset.focus || 'all', () => true);
  addPane();
  if (views.some((v) => v.visible())) connect();
  window.addEventListener('resize', render);
  bigScreen.addEventListener('change', render);
})();
