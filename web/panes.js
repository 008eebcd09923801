// The panes beside the lesson: a tab strip over the terminal's area,
// "Terminal | Editor | …", and a "Split" toggle that shows the chosen pane
// above the terminal instead of over it.
//
// The terminal never leaves the layout: another pane covers it (or, split,
// shares the column with it), so xterm keeps a real size and the shell is
// never resized to nothing while the learner edits.
//
// Another pane plugs in with one call, from its own script loaded after
// this one:
//   berthPanes.add({ id: 'map', label: 'Map', el: someDiv, onShow() {…} });
// `el` is placed in the pane area; `onShow` runs each time its tab is
// chosen. `berthPanes.show(id)` switches (the terminal's id is 'terminal').
'use strict';

(function () {
  const main = document.querySelector('main');
  const terminal = document.getElementById('terminal');
  if (!main || !terminal) return;

  const strip = document.createElement('nav');
  strip.className = 'pane-tabs';
  strip.setAttribute('role', 'tablist');
  strip.setAttribute('aria-label', 'Panes');
  const stack = document.createElement('div');
  stack.className = 'pane-stack';
  terminal.before(strip);
  terminal.before(stack);
  stack.append(terminal);
  const splitToggle = document.createElement('button');
  splitToggle.type = 'button';
  splitToggle.className = 'pane-split';
  splitToggle.textContent = 'Split';
  splitToggle.title = 'Show the pane above the terminal instead of over it';
  splitToggle.setAttribute('aria-pressed', 'false');
  strip.append(splitToggle);

  const panes = [];
  let current = 'terminal';

  function add(p) {
    const b = document.createElement('button');
    b.type = 'button';
    b.setAttribute('role', 'tab');
    b.dataset.pane = p.id;
    b.textContent = p.label;
    b.onclick = () => show(p.id);
    splitToggle.before(b);
    if (p.el !== terminal) {
      p.el.classList.add('pane');
      p.el.hidden = true;
      stack.prepend(p.el);
    }
    panes.push({ ...p, button: b });
    update();
  }

  function update() {
    for (const p of panes) {
      const on = p.id === current;
      p.button.setAttribute('aria-selected', String(on));
      if (p.el !== terminal) p.el.hidden = !on;
    }
    stack.classList.toggle('covered', current !== 'terminal');
    splitToggle.hidden = panes.length < 2;
  }

  function show(id) {
    const p = panes.find((x) => x.id === id);
    if (!p) return;
    current = id;
    update();
    if (p.onShow) p.onShow();
    if (id === 'terminal' && window.berthTerminal) window.berthTerminal.focus();
  }

  splitToggle.onclick = () => {
    const on = !stack.classList.contains('split-view');
    stack.classList.toggle('split-view', on);
    splitToggle.setAttribute('aria-pressed', String(on));
    // Split with the terminal chosen: show the first other pane above it.
    if (on && current === 'terminal' && panes[1]) show(panes[1].id);
  };

  add({ id: 'terminal', label: 'Terminal', el: terminal });
  window.berthPanes = { add, show, get current() { return current; } };
})();
