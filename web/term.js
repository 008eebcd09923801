// Berth's browser terminal, shared by the classroom (app.js) and the
// workshop pages (wterm.js): xterm.js with its fit add-on, a cursor that
// blinks without costing every keystroke a frame, copy and paste as a
// terminal user expects, and input sent in frames the server accepts.
//
// Why the cursor blinks here and not in xterm.js: xterm's DOM renderer
// blinks with an infinite CSS animation on the cursor cell, which keeps
// Chromium's main thread animating every frame; an echo that arrives over
// the network (not in the keydown's own task) was then drawn a frame later:
// 31 ms median key → glyph instead of 10 (`berth-bench term`, docs/design.md).
// A class toggled every 600 ms while the learner is idle (solid while
// typing, as in VTE and xterm's canvas renderer) blinks the same way at no
// cost.
'use strict';

(function () {
  // Largest input frame, UTF-16 units: 8192 × 6 bytes (a control character
  // JSON-escaped) stays under the server's 64 KiB message limit.
  const INPUT_CHUNK = 8192;
  const BLINK_MS = 600;
  const MAX_PASTE = 48 * 1024;

  const style = document.createElement('style');
  // One class more than xterm's own cursor rules, so the hidden phase wins.
  style.textContent = '.xterm.berth-cursor-off .xterm-rows.xterm-focus .xterm-cursor.xterm-cursor-block' +
    ' { background-color: transparent !important; color: inherit !important; }';
  document.head.appendChild(style);

  function blinker(term) {
    const el = term.element;
    let timer = null;
    const solid = () => {
      clearInterval(timer);
      timer = null;
      el.classList.remove('berth-cursor-off');
    };
    const restart = () => {
      solid();
      if (document.activeElement !== term.textarea) return;
      timer = setInterval(() => el.classList.toggle('berth-cursor-off'), BLINK_MS);
    };
    term.onData(restart);
    term.textarea.addEventListener('focus', restart);
    term.textarea.addEventListener('blur', solid);
  }

  // Copies the selection: through the async clipboard where the page may
  // use it (https, localhost), else through a `copy` event, which xterm.js
  // fills with its selection (plain http on a classroom LAN).
  function copySelection(term) {
    const text = term.getSelection();
    if (!text) return;
    const viaEvent = () => { try { document.execCommand('copy'); } catch (e) { /* no clipboard */ } };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).catch(viaEvent);
    else viaEvent();
  }

  function clipboard(term) {
    // Selecting copies, as in a desktop terminal.
    term.onSelectionChange(() => { if (term.hasSelection()) copySelection(term); });
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey || e.altKey || e.metaKey) return true;
      if (e.code === 'KeyC') {
        // Ctrl+Shift+C copies (Ctrl+C stays the shell's interrupt).
        copySelection(term);
        e.preventDefault();
        return false;
      }
      if (e.code === 'KeyV') {
        // Ctrl+Shift+V: xterm.js would send ^V; let the browser paste
        // instead (a `paste` event on xterm's textarea, which xterm turns
        // into input, bracketed when the shell asked for it).
        return false;
      }
      return true;
    });
  }

  // Creates a terminal in `el`: { term, fit } (term.fitNow() refits,
  // ignoring a hidden box).
  window.berthTerminalIn = function berthTerminalIn(el, opts) {
    opts = opts || {};
    const term = new Terminal({ cursorBlink: false, disableStdin: !!opts.readOnly, scrollback: 5000,
      fontFamily: 'ui-monospace, Menlo, Consolas, monospace', fontSize: opts.fontSize || 15 });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(el);
    term.fitNow = () => { try { fit.fit(); } catch (e) { /* hidden */ } };
    term.fitNow();
    if (!opts.readOnly) blinker(term);
    clipboard(term);
    return { term, fit };
  };

  // Sends typed or pasted input: a large paste is split (never inside a
  // surrogate pair) so each frame fits the server's message limit; one
  // larger than the shell's input queue (64 KiB on the server, of which
  // a paste may take MAX_PASTE) is refused whole, with a message, rather
  // than cut short where the queue overflows.
  const refused = new Set(); // the `say`s now showing a refusal
  window.berthSendInput = function berthSendInput(send, data, say) {
    const bytes = new TextEncoder().encode(data).length;
    if (bytes > MAX_PASTE) {
      refused.add(say);
      say('That paste is ' + Math.ceil(bytes / 1024) + ' KB; the terminal takes up to ' + MAX_PASTE / 1024 +
        ' KB at once. Paste it in parts.');
      return;
    }
    if (refused.delete(say)) say('');
    let at = 0;
    while (at < data.length) {
      let end = Math.min(at + INPUT_CHUNK, data.length);
      const last = data.charCodeAt(end - 1);
      if (end < data.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
      send({ type: 'input', data: data.slice(at, end) });
      at = end;
    }
  };
}());
