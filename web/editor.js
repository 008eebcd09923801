// The editor pane: a file tree of the lab's home (/root) and a CodeMirror
// editor, over the file API (/api/files/NODE/…). Loaded after app.js and
// panes.js; CodeMirror (/assets/codemirror.js) is fetched the first time
// the pane opens.
//
// An unsaved edit is never silently lost: a save sends the version the
// file had when it was opened and the server refuses it if the file moved
// on (the learner chooses: overwrite or reload); the open file's version is
// polled every few seconds while the pane is shown (and when it is shown
// again), and a change from the terminal shows a reload bar; leaving the
// page with unsaved edits asks first.
'use strict';

(function () {
  if (!window.berthPanes) return;
  const POLL_MS = 2500;

  const el = document.createElement('div');
  el.id = 'editor';
  el.innerHTML = `
    <aside class="files" aria-label="Files in the lab">
      <div class="files-bar">
        <button type="button" data-act="new-file" title="New file">+ File</button>
        <button type="button" data-act="new-folder" title="New folder">+ Folder</button>
        <button type="button" data-act="upload" title="Upload files (or drop files and folders on the tree)">⇪ Files</button>
        <button type="button" data-act="upload-folder" title="Upload a folder (or drop it on the tree)">⇪ Folder</button>
        <button type="button" data-act="refresh" title="Refresh">⟳</button>
      </div>
      <div class="tree-root" data-kind="dir" data-path=""><button type="button" class="entry dir root" title="/root, the lab's home">~ (home)</button></div>
      <ul class="tree" role="tree"></ul>
      <p class="drop-hint">Drop files or folders here to upload them</p>
      <input type="file" class="upload-input" multiple hidden>
      <input type="file" class="upload-folder" webkitdirectory multiple hidden>
    </aside>
    <section class="edit">
      <div class="edit-bar">
        <span class="file-name">No file open</span>
        <span class="file-lang"></span>
        <span class="file-state" role="status"></span>
        <span class="edit-actions">
          <button type="button" data-act="save" disabled title="Save (Ctrl+S)">Save</button>
          <button type="button" data-act="rename" disabled>Rename</button>
          <button type="button" data-act="download" disabled>Download</button>
          <button type="button" data-act="delete" disabled>Delete</button>
        </span>
      </div>
      <div class="changed-bar" hidden>
        <span class="changed-text"></span>
        <button type="button" data-act="reload">Reload</button>
        <button type="button" data-act="keep">Keep mine</button>
      </div>
      <div class="cm-host"><p class="cm-empty">Open a file from the tree, or make one with “+ File”.</p></div>
    </section>`;
  const $ = (s) => el.querySelector(s);
  const tree = $('.tree');
  const stateEl = $('.file-state');
  const host = $('.cm-host');

  // What is open: path (relative to /root), the version read, the view.
  let open = null;
  // The selected tree entry: { path, kind }.
  let selected = { path: '', kind: 'dir' };
  const expanded = new Set(['']);
  let cmLoading = null;

  const node = () => {
    const b = document.querySelector('#tabs button[aria-selected="true"]');
    return b ? b.textContent : 'node1';
  };
  const api = (op, path, extra) => '/api/files/' + encodeURIComponent(node()) + '/' + op +
    '?path=' + encodeURIComponent(path) + (extra || '');
  async function call(method, op, path, extra, body) {
    const r = await fetch(api(op, path, extra), { method, body, credentials: 'same-origin' });
    const data = r.status === 204 ? null : await r.json().catch(() => null);
    return { ok: r.ok, status: r.status, data, message: (data && data.message) || ('HTTP ' + r.status) };
  }
  const say = (text, bad) => { stateEl.textContent = text || ''; stateEl.classList.toggle('bad', !!bad); };
  const join = (dir, name) => (dir ? dir + '/' + name : name);
  const dirOf = (p) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
  const targetDir = () => (selected.kind === 'dir' ? selected.path : dirOf(selected.path));

  function loadCodeMirror() {
    if (window.BerthCM) return Promise.resolve();
    if (!cmLoading) {
      cmLoading = new Promise((ok, fail) => {
        const s = document.createElement('script');
        s.src = '/assets/codemirror.js';
        s.onload = ok; s.onerror = () => fail(new Error('the editor failed to load'));
        document.head.append(s);
      });
    }
    return cmLoading;
  }

  // ---- the tree ----
  async function listInto(ul, dir, depth) {
    const r = await call('GET', 'list', dir);
    if (!r.ok) { ul.replaceChildren(item(r.message, 'error', dir, depth)); return; }
    const items = r.data.entries.map((e) => entryItem(e, join(dir, e.name), depth));
    if (r.data.omitted) items.push(item('… ' + r.data.omitted + ' more', 'error', dir, depth));
    ul.replaceChildren(...items);
  }

  function item(text, cls, path, depth) {
    const li = document.createElement('li');
    li.className = cls; li.textContent = text; li.style.paddingLeft = (depth * 0.9 + 0.4) + 'rem';
    return li;
  }

  function entryItem(e, path, depth) {
    const li = document.createElement('li');
    li.setAttribute('role', 'treeitem');
    li.dataset.path = path; li.dataset.kind = e.kind;
    const row = document.createElement('button');
    row.type = 'button'; row.className = 'entry ' + e.kind;
    row.style.paddingLeft = (depth * 0.9 + 0.4) + 'rem';
    const isDir = e.kind === 'dir';
    row.textContent = (isDir ? (expanded.has(path) ? '▾ ' : '▸ ') : '  ') + e.name + (e.target ? ' → ' + e.target : '');
    row.title = path + (isDir ? '' : ' (' + e.size + ' bytes)');
    if (path === selected.path) row.classList.add('selected');
    if (open && path === open.path) row.classList.add('open');
    li.append(row);
    if (isDir) {
      li.setAttribute('aria-expanded', String(expanded.has(path)));
      const sub = document.createElement('ul');
      sub.setAttribute('role', 'group');
      li.append(sub);
      if (expanded.has(path)) listInto(sub, path, depth + 1);
    }
    row.onclick = () => {
      select(path, e.kind);
      if (isDir) {
        if (expanded.has(path)) expanded.delete(path); else expanded.add(path);
        refreshTree();
      } else {
        openFile(path);
      }
    };
    return li;
  }

  function select(path, kind) {
    selected = { path, kind };
    el.querySelectorAll('.entry.selected').forEach((b) => b.classList.remove('selected'));
    const li = path ? tree.querySelector('li[data-path="' + CSS.escape(path) + '"] > .entry') : $('.tree-root .entry');
    if (li) li.classList.add('selected');
    const any = path !== '';
    $('[data-act="rename"]').disabled = !any;
    $('[data-act="delete"]').disabled = !any;
    $('[data-act="download"]').disabled = false;
  }

  function refreshTree() { return listInto(tree, '', 0); }

  // ---- the open file ----
  function setDirty(d) {
    if (!open) return;
    if (d && !open.dirty && /^Saved/.test(stateEl.textContent)) say('');
    open.dirty = d;
    $('.file-name').textContent = open.path + (d ? ' •' : '');
    $('[data-act="save"]').disabled = !d;
  }

  async function openFile(path, opts) {
    opts = opts || {};
    if (open && open.dirty && open.path !== path &&
        !confirm(open.path + ' has unsaved changes. Discard them and open ' + path + '?')) return false;
    await loadCodeMirror();
    const r = await call('GET', 'read', path);
    if (!r.ok) { say(r.message, true); return false; }
    show(path, r.data.content, r.data.info.version);
    say(opts.message || '');
    return true;
  }

  function show(path, content, version) {
    if (open && open.view) open.view.destroy();
    host.replaceChildren();
    const view = window.BerthCM.create(host, content, path, () => setDirty(true), save);
    open = { path, version, view, dirty: false, changedVersion: null };
    $('.file-lang').textContent = view.berthLanguage;
    $('.changed-bar').hidden = true;
    setDirty(false);
    select(path, 'file');
    el.querySelectorAll('.entry.open').forEach((b) => b.classList.remove('open'));
    const row = tree.querySelector('li[data-path="' + CSS.escape(path) + '"] > .entry');
    if (row) row.classList.add('open');
    window.berthEditorView = view; // for tests
  }

  async function save(force) {
    if (!open) return;
    let text = open.view.state.doc.toString();
    // Text files end with a newline (so `echo >> file` in the terminal
    // starts a line of its own), as most editors make them.
    if (text && !text.endsWith('\n')) text += '\n';
    const extra = force ? '' : '&version=' + encodeURIComponent(open.version);
    say('Saving…');
    const r = await call('POST', 'write', open.path, extra, text);
    if (r.ok) {
      open.version = r.data.version;
      const now = open.view.state.doc.toString();
      if (now === text || now + '\n' === text) setDirty(false);
      $('.changed-bar').hidden = true;
      say('Saved');
      return;
    }
    if (r.status === 409 && !force) {
      say('Not saved: the file changed on disk', true);
      if (confirm(open.path + ' changed on disk since you opened it (in the terminal?).\n\n' +
        'OK: overwrite it with your version.\nCancel: keep both; use “Reload” to see the new one.')) {
        save(true);
      } else {
        showChanged();
      }
      return;
    }
    say('Not saved: ' + r.message, true);
  }

  function showChanged() {
    $('.changed-text').textContent = open.dirty
      ? open.path + ' changed on disk. Your unsaved edits are kept here.'
      : open.path + ' changed on disk (in the terminal?).';
    $('.changed-bar').hidden = false;
  }

  // Only while the editor is on screen (each poll is a helper process on
  // the server); showing the pane polls at once.
  const onScreen = () => berthPanes.current === 'editor' && !document.hidden;
  async function poll() {
    if (!open || !onScreen()) return;
    const path = open.path;
    const r = await call('GET', 'stat', path);
    if (!open || open.path !== path) return;
    if (!r.ok) {
      if (r.status === 404) { say(path + ' was deleted on disk; Save makes it again', true); open.version = ''; }
      return;
    }
    if (r.data.version !== open.version && r.data.version !== open.changedVersion) {
      open.changedVersion = r.data.version;
      showChanged();
    }
  }

  // ---- actions ----
  async function newEntry(kind) {
    const dir = targetDir();
    const name = prompt((kind === 'file' ? 'New file' : 'New folder') + ' in ' + (dir || '~') + ':');
    if (!name) return;
    const path = join(dir, name.replace(/^\/+/, ''));
    const r = kind === 'file'
      ? await call('POST', 'write', path, '&new=true', '')
      : await call('POST', 'mkdir', path);
    if (!r.ok) { say(r.message, true); return; }
    if (dir) expanded.add(dir);
    await refreshTree();
    if (kind === 'file') openFile(path); else select(path, 'dir');
  }

  async function rename() {
    const from = selected.path;
    if (!from) return;
    const to = prompt('Rename ' + from + ' to:', from);
    if (!to || to === from) return;
    const r = await call('POST', 'rename', from, '&to=' + encodeURIComponent(to));
    if (!r.ok) { say(r.message, true); return; }
    if (open && open.path === from) { open.path = to; setDirty(open.dirty); }
    select(to, selected.kind);
    refreshTree();
  }

  async function remove() {
    const path = selected.path;
    if (!path || !confirm('Delete ' + path + (selected.kind === 'dir' ? ' and everything in it' : '') + '?')) return;
    const r = await call('POST', 'delete', path);
    if (!r.ok) { say(r.message, true); return; }
    if (open && (open.path === path || open.path.startsWith(path + '/'))) {
      open.view.destroy(); open = null;
      host.replaceChildren(); $('.file-name').textContent = 'No file open'; $('.file-lang').textContent = '';
      $('[data-act="save"]').disabled = true;
    }
    select(dirOf(path), 'dir');
    refreshTree();
  }

  function download() {
    const a = document.createElement('a');
    a.href = api('download', selected.path);
    a.download = '';
    document.body.append(a); a.click(); a.remove();
  }

  // ---- uploads: dropped files and folders become one tar ----
  const enc = new TextEncoder();
  function tarHeader(name, size, dir) {
    const h = new Uint8Array(512);
    const put = (off, len, s) => { const b = enc.encode(s); h.set(b.subarray(0, len), off); };
    const oct = (off, len, n) => put(off, len, n.toString(8).padStart(len - 1, '0') + '\0');
    put(0, 100, name);
    oct(100, 8, dir ? 0o755 : 0o644); oct(108, 8, 0); oct(116, 8, 0);
    oct(124, 12, size); oct(136, 12, Math.floor(Date.now() / 1000));
    put(148, 8, '        ');
    h[156] = (dir ? '5' : '0').charCodeAt(0);
    put(257, 6, 'ustar\0'); put(263, 2, '00');
    let sum = 0; for (const b of h) sum += b;
    put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
    return h;
  }
  // A PAX header carrying a long (or non-ASCII) path.
  function paxFor(name) {
    const rec = ' path=' + name + '\n';
    const base = enc.encode(rec).length;
    let digits = 1;
    while (String(base + digits).length !== digits) digits += 1;
    const len = base + digits;
    const data = enc.encode(len + rec);
    const h = tarHeader('PaxHeader', data.length, false); h[156] = 'x'.charCodeAt(0);
    let sum = 0; h.set(enc.encode('        '), 148); for (const b of h) sum += b;
    h.set(enc.encode(sum.toString(8).padStart(6, '0') + '\0 '), 148);
    return [h, data, new Uint8Array((512 - (data.length % 512)) % 512)];
  }
  function tarOf(files) {
    const parts = [];
    for (const f of files) {
      const name = f.path + (f.dir ? '/' : '');
      if (enc.encode(name).length > 99 || /[^\x20-\x7e]/.test(name)) parts.push(...paxFor(name));
      parts.push(tarHeader(name.slice(0, 99), f.dir ? 0 : f.file.size, f.dir));
      if (!f.dir) { parts.push(f.file); parts.push(new Uint8Array((512 - (f.file.size % 512)) % 512)); }
    }
    parts.push(new Uint8Array(1024));
    return new Blob(parts);
  }
  async function walkEntry(entry, prefix, out) {
    const path = prefix + entry.name;
    if (entry.isFile) {
      out.push({ path, file: await new Promise((ok, fail) => entry.file(ok, fail)) });
    } else if (entry.isDirectory) {
      out.push({ path, dir: true });
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
        if (!batch.length) break;
        for (const e of batch) await walkEntry(e, path + '/', out);
      }
    }
  }
  async function upload(files, dir) {
    if (!files.length) return;
    say('Uploading ' + files.filter((f) => !f.dir).length + ' file(s)…');
    const r = await call('POST', 'upload', dir, '', tarOf(files));
    if (!r.ok) { say('Upload failed: ' + r.message, true); return; }
    say('Uploaded');
    if (dir) expanded.add(dir);
    refreshTree();
  }
  $('.tree-root .entry').onclick = () => select('', 'dir');
  const aside = $('.files');
  aside.addEventListener('dragover', (e) => { e.preventDefault(); aside.classList.add('dropping'); });
  aside.addEventListener('dragleave', () => aside.classList.remove('dropping'));
  aside.addEventListener('drop', async (e) => {
    e.preventDefault();
    aside.classList.remove('dropping');
    const li = e.target.closest && e.target.closest('[data-kind="dir"]');
    const dir = li ? li.dataset.path : targetDir();
    const entries = [...e.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    const files = [];
    if (entries.length) { for (const en of entries) await walkEntry(en, '', files); }
    else for (const f of e.dataTransfer.files) files.push({ path: f.name, file: f });
    upload(files, dir);
  });
  const input = $('.upload-input');
  input.onchange = () => { upload([...input.files].map((f) => ({ path: f.name, file: f })), targetDir()); input.value = ''; };
  const folderInput = $('.upload-folder');
  folderInput.onchange = () => {
    upload([...folderInput.files].map((f) => ({ path: f.webkitRelativePath || f.name, file: f })), targetDir());
    folderInput.value = '';
  };

  el.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const act = b.dataset.act;
    if (act === 'new-file') newEntry('file');
    else if (act === 'new-folder') newEntry('folder');
    else if (act === 'upload') input.click();
    else if (act === 'upload-folder') folderInput.click();
    else if (act === 'refresh') refreshTree();
    else if (act === 'save') save(false);
    else if (act === 'rename') rename();
    else if (act === 'delete') remove();
    else if (act === 'download') download();
    else if (act === 'reload') { if (!open.dirty || confirm('Discard your unsaved edits and load the file from disk?')) openFile(open.path, { message: 'Reloaded' }); }
    else if (act === 'keep') { $('.changed-bar').hidden = true; }
  });

  window.addEventListener('beforeunload', (e) => {
    if (open && open.dirty) { e.preventDefault(); e.returnValue = ''; }
  });
  setInterval(poll, POLL_MS);

  let shown = false;
  berthPanes.add({
    id: 'editor', label: 'Editor', el,
    onShow() {
      loadCodeMirror().catch((e) => say(e.message, true));
      refreshTree();
      poll();
      if (!shown) { shown = true; select('', 'dir'); }
      if (open) open.view.focus();
    },
  });

  // For lessons: open `path` in the editor; with `content`, make the file
  // with it first (its folders too), asking before replacing a different one.
  async function openPath(path, content) {
    berthPanes.show('editor');
    await loadCodeMirror();
    if (content !== undefined) {
      const parts = path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        await call('POST', 'mkdir', dir);
        expanded.add(dir);
      }
      const now = await call('GET', 'read', path);
      if (now.ok && now.data.content === content) return openFile(path);
      if (now.ok && !confirm(path + ' exists and differs. Replace it with the lesson\'s version?')) return openFile(path);
      if (open && open.path === path && open.dirty && !confirm('Discard your unsaved edits to ' + path + '?')) return false;
      const w = await call('POST', 'write', path, now.ok ? '&version=' + encodeURIComponent(now.data.info.version) : '&new=true', content);
      if (!w.ok) { say(w.message, true); return false; }
      if (open && open.path === path) open.dirty = false;
      await refreshTree();
      return openFile(path, { message: 'Saved from the lesson' });
    }
    const dir = dirOf(path);
    if (dir) dir.split('/').forEach((_, i, a) => expanded.add(a.slice(0, i + 1).join('/')));
    await refreshTree();
    return openFile(path);
  }
  // Lesson blocks and links (server/src/lessons/render.rs).
  function selectNode(n) {
    const tab = n && [...document.querySelectorAll('#tabs button')].find((b) => b.textContent === n);
    if (tab && tab.getAttribute('aria-selected') !== 'true') tab.click();
  }
  document.querySelectorAll('button.file-save').forEach((b) => {
    b.addEventListener('click', () => { selectNode(b.dataset.node); openPath(b.dataset.path, b.dataset.content); });
  });
  document.querySelectorAll('a.open-file').forEach((a) => {
    a.addEventListener('click', (e) => { e.preventDefault(); openPath(a.dataset.path); });
  });

  window.berthEditor = { open: openPath, save: () => save(false), get current() { return open && open.path; } };
})();
