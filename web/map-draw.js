// The lab map's drawing: a model from /api/map (see server/src/map/model.rs)
// and a focus in, one SVG element out. A small layout of our own: boxes in
// rows (networks holding container cards), an icicle of layers (images that
// share layers stand on the same blocks), columns of swarm nodes. Every
// drawn object carries data-key (what it is) and data-sig (what it looks
// like), so map.js can tell what changed since the last model.
'use strict';

window.berthMapDraw = (function () {
  const NS = 'http://www.w3.org/2000/svg';

  function el(tag, attrs, ...children) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
    for (const c of children) if (c) e.append(c);
    return e;
  }
  function text(x, y, s, cls, attrs) {
    const t = el('text', Object.assign({ x, y, class: cls || '' }, attrs || {}));
    t.textContent = s;
    return t;
  }
  // Fits a label into `width` pixels at about `px` per character.
  function fit(s, width, px) {
    const n = Math.max(3, Math.floor(width / px));
    return s.length <= n ? s : s.slice(0, n - 1) + '…';
  }
  function size(bytes) {
    if (bytes < 1024) return bytes + ' B';
    const u = ['kB', 'MB', 'GB'];
    let v = bytes / 1000; let i = 0;
    while (v >= 1000 && i < u.length - 1) { v /= 1000; i += 1; }
    return (v >= 10 ? Math.round(v) : v.toFixed(1)) + ' ' + u[i];
  }
  // A stable colour for an image name (tasks of one image share it).
  function hue(s) {
    let h = 0;
    for (const ch of s) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return ['#2f6fb3', '#b3532f', '#2f8f5b', '#8a3fb3', '#b38a2f', '#2f9fa8', '#a8326e', '#5b6b2f'][h % 8];
  }
  const imageName = (t) => (t.includes(':') || t.includes('@') ? t : t + ':latest');
  const imageLabel = (img) => (img.tags.length ? img.tags.join(', ') : '<none> ' + img.id);
  const imageKeys = (img) => (img.tags.length ? img.tags : ['<none>@' + img.id]);

  // The geometry, scaled up on a projector-sized screen.
  function metrics(scale) {
    const s = scale;
    return { s, pad: 10 * s, card: 200 * s, cardH: 62 * s, row: 17 * s, gap: 12 * s, title: 24 * s, font: 13 * s,
      layerH: 26 * s, col: 150 * s, task: 46 * s };
  }

  // A focusable group: what a keyboard user tabs to and a reader announces.
  function node(key, sig, label, cls, extra) {
    return el('g', Object.assign({ class: cls, 'data-key': key, 'data-sig': sig, tabindex: '0', role: 'group',
      'aria-label': label }, extra || {}));
  }

  function portLink(c, p, x, y, m, ctx) {
    const label = ':' + p.host_port + '→' + p.port + (p.proto === 'tcp' ? '' : '/' + p.proto);
    const w = (label.length * 8 + 12) * m.s;
    const url = ctx.preview && p.proto === 'tcp' ? ctx.preview + '/s/' + ctx.session + '/' + p.host_port + '/' : null;
    const g = el('g', { class: 'port' });
    g.append(el('rect', { x, y, width: w, height: m.row, rx: 4 * m.s }), text(x + 5 * m.s, y + m.row - 4 * m.s, label));
    if (!url) {
      g.setAttribute('aria-label', c.name + ' publishes port ' + p.port + ' on ' + p.host_port);
      return { g, w };
    }
    const a = el('a', { href: url, target: '_blank', rel: 'noopener', class: 'port-link',
      'aria-label': 'Open ' + c.name + ' port ' + p.port + ' (host port ' + p.host_port + ') through the preview' });
    a.append(g);
    return { g: a, w };
  }

  // One container card at (x, y); its height grows with its mounts.
  function card(c, x, y, m, ctx, where) {
    const h = m.cardH + (c.mounts.length + (c.left_out ? 1 : 0)) * m.row;
    const sig = [c.state, c.health, c.image, c.networks.join(','), c.ports.map((p) => p.host_port + ':' + p.port).join(','),
      c.mounts.map((v) => v.kind + v.source + v.target).join(',')].join('|');
    const label = 'container ' + c.name + ', image ' + c.image + ', ' + c.state + (c.health ? ', ' + c.health : '') +
      (c.ports.length ? ', ports ' + c.ports.map((p) => p.host_port + ' to ' + p.port).join(', ') : '') +
      (c.mounts.length ? ', mounts ' + c.mounts.map((v) => (v.source || v.kind) + ' at ' + v.target).join(', ') : '');
    const g = node('container/' + c.node + '/' + c.name + where, sig, label, 'container state-' + c.state + (c.health ? ' health-' + c.health : ''),
      { 'data-name': c.name, 'data-ports': c.ports.map((p) => p.host_port).join(' ') });
    g.append(el('rect', { class: 'card', x, y, width: m.card, height: h, rx: 6 * m.s }));
    g.append(text(x + m.pad, y + 19 * m.s, fit(c.name, m.card - 2 * m.pad, 8.8 * m.s), 'name'));
    g.append(text(x + m.pad, y + 36 * m.s, fit(c.image, m.card - 2 * m.pad, 7 * m.s), 'image'));
    const state = c.state + (c.health ? ' · ' + c.health : '');
    g.append(el('circle', { class: 'dot', cx: x + m.pad + 4 * m.s, cy: y + 50 * m.s, r: 4 * m.s }));
    g.append(text(x + m.pad + 12 * m.s, y + 54 * m.s, state, 'state'));
    c.mounts.forEach((v, i) => {
      const my = y + m.cardH + i * m.row - 6 * m.s;
      const d = el('g', { class: 'disk mount-' + v.kind });
      d.append(el('rect', { x: x + m.pad, y: my, width: 14 * m.s, height: 12 * m.s, rx: 3 * m.s }));
      d.append(text(x + m.pad + 19 * m.s, my + 10 * m.s,
        fit((v.kind === 'tmpfs' ? 'tmpfs' : v.source) + ' → ' + v.target + (v.read_only ? ' (ro)' : ''), m.card - 3 * m.pad, 6.6 * m.s)));
      g.append(d);
    });
    if (c.left_out) g.append(text(x + m.pad, y + m.cardH + c.mounts.length * m.row + 4 * m.s, 'and ' + c.left_out + ' more ports, mounts or networks', 'subtle'));
    // Published ports: sockets on the card's right edge.
    let py = y + 6 * m.s;
    for (const p of c.ports) {
      const { g: pg, w } = portLink(c, p, x + m.card - 8 * m.s, py, m, ctx);
      pg.setAttribute('transform', 'translate(' + (-w + 16 * m.s) + ',0)');
      g.append(pg);
      py += m.row + 3 * m.s;
    }
    return { g, h };
  }

  // Cards in rows inside `width`; returns the drawn group and its height.
  function cards(list, x, y, width, m, ctx, where) {
    const g = el('g');
    const per = Math.max(1, Math.floor((width + m.gap) / (m.card + m.gap)));
    let rowH = 0; let cy = y;
    list.forEach((c, i) => {
      if (i > 0 && i % per === 0) { cy += rowH + m.gap; rowH = 0; }
      const { g: cg, h } = card(c, x + (i % per) * (m.card + m.gap), cy, m, ctx, where);
      g.append(cg);
      rowH = Math.max(rowH, h);
    });
    return { g, h: list.length ? cy - y + rowH : 0 };
  }

  function heading(x, y, s, m) { return text(x, y + m.font, s, 'heading'); }

  // Networks (per lab node) with the containers on each, then volumes.
  function networks(model, x, y, width, m, ctx) {
    const g = el('g', { class: 'section networks' });
    let cy = y;
    const many = model.nodes.length > 1;
    for (const n of model.nodes) {
      const here = model.containers.filter((c) => c.node === n);
      const nets = model.networks.filter((w) => w.node === n);
      const members = (w) => here.filter((c) => c.networks.includes(w.name));
      const shown = nets.filter((w) => members(w).length || !['bridge', 'host', 'none'].includes(w.name));
      const loose = here.filter((c) => !c.networks.some((name) => nets.some((w) => w.name === name)));
      if (many && (shown.length || loose.length)) { g.append(heading(x, cy, n, m)); cy += m.title + 4 * m.s; }
      const groups = shown.map((w) => ({ w, list: members(w) }));
      if (loose.length) groups.push({ w: { name: 'no network of its own', driver: '', node: n, loose: true }, list: loose });
      for (const { w, list } of groups) {
        const box = el('g', { class: 'network' + (w.loose ? ' loose' : ''), 'data-network': w.name, 'data-node': n,
          'data-key': 'network/' + n + '/' + w.name, 'data-sig': w.driver + w.subnet });
        const inner = cards(list, x + m.pad, cy + m.title + 6 * m.s, width - 2 * m.pad, m, ctx, '@' + w.name);
        const h = m.title + 6 * m.s + Math.max(inner.h, 18 * m.s) + m.pad;
        box.append(el('rect', { class: 'frame', x, y: cy, width, height: h, rx: 10 * m.s }));
        const title = w.loose ? w.name : 'network ' + w.name + (w.driver && w.driver !== 'bridge' ? ' · ' + w.driver : '') + (w.subnet ? ' · ' + w.subnet : '') +
          (w.internal ? ' · internal' : '');
        box.append(text(x + m.pad, cy + 17 * m.s, title, 'title'));
        if (!list.length) box.append(text(x + m.pad, cy + m.title + 20 * m.s, 'no containers', 'empty'));
        box.append(inner.g);
        g.append(box);
        cy += h + m.gap;
      }
      const vols = model.volumes.filter((v) => v.node === n && !here.some((c) => c.mounts.some((mt) => mt.source === v.name)));
      if (vols.length) {
        g.append(text(x, cy + m.font, 'Volumes not in use:', 'subtle'));
        let vx = x + 140 * m.s;
        for (const v of vols) {
          const label = v.anonymous ? v.name.slice(0, 12) : v.name;
          const w = (label.length * 7 + 30) * m.s;
          if (vx + w > x + width) { vx = x + 140 * m.s; cy += m.row + 4 * m.s; }
          const d = node('volume/' + n + '/' + v.name, '', 'volume ' + v.name + ', not mounted', 'disk volume');
          d.append(el('rect', { x: vx, y: cy + 2 * m.s, width: 14 * m.s, height: 12 * m.s, rx: 3 * m.s }), text(vx + 19 * m.s, cy + 12 * m.s, label));
          g.append(d);
          vx += w;
        }
        cy += m.row + m.gap;
      }
    }
    if (model.more.containers) { g.append(text(x, cy + m.font, 'and ' + model.more.containers + ' more containers', 'subtle')); cy += m.row + m.gap; }
    if (cy === y) { g.append(text(x, cy + m.font, 'No containers yet: docker run makes one.', 'empty')); cy += m.row + m.gap; }
    return { g, h: cy - y };
  }

  // Images as an icicle: each image a column, bottom layer first; a layer
  // chain several images share is one block spanning their columns.
  function images(model, x, y, width, m, ctx, only) {
    const g = el('g', { class: 'section images' });
    let list = model.images;
    if (only) {
      const want = imageName(only);
      const chosen = list.filter((i) => i.tags.includes(want) || i.id.startsWith(only));
      const base = new Set(chosen.map((i) => i.layers[0]));
      list = list.filter((i) => chosen.includes(i) || (i.layers.length && base.has(i.layers[0])));
      if (!chosen.length) {
        g.append(text(x, y + m.font, 'No image ' + want + ' yet.', 'empty'));
        return { g, h: m.row + m.gap };
      }
    }
    if (!list.length) {
      g.append(text(x, y + m.font, 'No images yet.', 'empty'));
      return { g, h: m.row + m.gap };
    }
    // The trie of layer chains; images in depth-first order.
    const root = { kids: new Map(), images: [] };
    for (const img of list) {
      let t = root;
      for (const l of img.layers) {
        if (!t.kids.has(l)) t.kids.set(l, { id: l, kids: new Map(), images: [] });
        t = t.kids.get(l);
      }
      t.images.push(img);
    }
    const order = [];
    (function walk(t) { t.images.forEach((i) => order.push(i)); for (const k of t.kids.values()) walk(k); })(root);
    const col = Math.max(90 * m.s, Math.min(m.col, (width - m.gap) / order.length));
    const depth = Math.max(...order.map((i) => i.layers.length), 1);
    const rw = model.containers;
    const rwH = m.layerH;
    // Each image's name sits on its own stack (on its containers' writable
    // layers when it has any), so a short image is not named far above.
    const hasRw = (img) => rw.some((c) => c.image_id === img.id && c.node === img.node);
    const tallest = Math.max(...order.map((img) => img.layers.length * m.layerH + (hasRw(img) ? rwH + 2 * m.s : 0)), depth * m.layerH);
    const base = y + m.title + tallest;
    order.forEach((img, i) => {
      const cx = x + i * col;
      const label = imageLabel(img);
      const shortLabel = (model.nodes.length > 1 ? img.node + ': ' : '') +
        (img.tags.length ? img.tags[0] + (img.tags.length > 1 ? ' +' + (img.tags.length - 1) : '') : '<none> ' + img.id);
      const mine = rw.filter((c) => c.image_id === img.id && c.node === img.node);
      const stackTop = base - img.layers.length * m.layerH - (mine.length ? rwH + 2 * m.s : 0);
      const name = text(cx + 4 * m.s, stackTop - 7 * m.s, fit(shortLabel, col - 10 * m.s, 8.4 * m.s), 'image-name', { 'data-image': imageKeys(img).join(' ') });
      name.append(el('title', {}, document.createTextNode(img.node + ': ' + label)));
      g.append(name);
      if (mine.length) {
        const yTop = base - img.layers.length * m.layerH - rwH - 2 * m.s;
        const names = mine.map((c) => c.name);
        const r = node('rw/' + img.node + '/' + img.id, names.join(','), 'writable layers of ' + names.join(', ') + ' on ' + label, 'rw-layer');
        r.append(el('rect', { x: cx + 2 * m.s, y: yTop, width: col - 4 * m.s, height: rwH - 2 * m.s, rx: 3 * m.s }));
        r.append(text(cx + 6 * m.s, yTop + 16 * m.s, fit('rw: ' + names.join(', '), col - 12 * m.s, 6.6 * m.s)));
        g.append(r);
      }
    });
    // Layer blocks: each trie node spans the columns of the images above it.
    (function draw(t, d) {
      for (const k of t.kids.values()) {
        const under = [];
        (function collect(u) { u.images.forEach((i) => under.push(i)); for (const v of u.kids.values()) collect(v); })(k);
        const first = order.indexOf(under[0]);
        const span = under.length;
        const names = under.flatMap(imageKeys);
        const lx = x + first * col; const ly = base - (d + 1) * m.layerH;
        const shared = span > 1;
        const bytes = model.layers[k.id] || 0;
        const lg = node('layer/' + k.id + '/' + d, names.join(' '),
          'layer ' + k.id + ', ' + size(bytes) + (shared ? ', shared by ' : ', in ') + names.join(', '),
          'layer' + (shared ? ' shared' : ''), { 'data-layer': k.id, 'data-images': names.join(' ') });
        lg.append(el('rect', { x: lx + 2 * m.s, y: ly, width: span * col - 4 * m.s, height: m.layerH - 3 * m.s, rx: 3 * m.s }));
        lg.append(text(lx + 7 * m.s, ly + 16 * m.s, fit(k.id.slice(0, 8) + ' · ' + size(bytes), span * col - 14 * m.s, 6.8 * m.s)));
        g.append(lg);
        draw(k, d + 1);
      }
    })(root, 0);
    let h = base - y + m.gap;
    if (model.more.images && !only) { g.append(text(x, base + m.font + 4 * m.s, 'and ' + model.more.images + ' more images', 'subtle')); h += m.row; }
    return { g, h };
  }

  // Swarm: the routing mesh across the top, one column per node, tasks in
  // it coloured by their image (a rolling update shows two colours).
  function swarm(model, x, y, width, m) {
    const g = el('g', { class: 'section swarm' });
    const s = model.swarm;
    let cy = y;
    for (const svc of s.services) {
      for (const [pub, target] of svc.ports) {
        const mesh = node('mesh/' + svc.name + '/' + pub, String(target), 'routing mesh: port ' + pub + ' on every node goes to service ' +
          svc.name + ' port ' + target, 'mesh');
        mesh.append(el('rect', { x, y: cy, width, height: m.row + 6 * m.s, rx: 4 * m.s }));
        mesh.append(text(x + m.pad, cy + m.row, 'routing mesh :' + pub + ' on every node → ' + svc.name + ':' + target));
        g.append(mesh);
        cy += m.row + 12 * m.s;
      }
    }
    const nodes = s.nodes;
    const colW = Math.max(120 * m.s, (width - m.gap * (nodes.length - 1)) / Math.max(nodes.length, 1));
    let tallest = 0;
    nodes.forEach((n, i) => {
      const nx = x + i * (colW + m.gap);
      const tasks = s.tasks.filter((t) => t.node === n.hostname).sort((a, b) => (a.service + a.slot).localeCompare(b.service + b.slot));
      const h = m.title + 14 * m.s + Math.max(1, tasks.length) * (m.task + 6 * m.s);
      tallest = Math.max(tallest, h);
      const ng = el('g', { class: 'swarm-node' + (n.down ? ' down' : ''), 'data-host': n.hostname, 'data-key': 'swarm-node/' + n.hostname,
        'data-sig': n.role + n.availability + n.down + n.leader });
      ng.append(el('rect', { class: 'frame', x: nx, y: cy, width: colW, height: h, rx: 8 * m.s }));
      ng.append(text(nx + m.pad, cy + 18 * m.s, fit(n.hostname + ' · ' + n.role + (n.leader ? ' ★' : '') +
        (n.availability !== 'active' ? ' · ' + n.availability : '') + (n.down ? ' · down' : ''), colW - 2 * m.pad, 7.5 * m.s), 'title'));
      tasks.forEach((t, j) => {
        const ty = cy + m.title + 8 * m.s + j * (m.task + 6 * m.s);
        const tg = node('task/' + t.service + '.' + t.slot + '/' + t.node, t.image + t.state,
          'task ' + t.service + '.' + t.slot + ' on ' + n.hostname + ', image ' + t.image + ', ' + t.state,
          'task state-' + t.state, { 'data-service': t.service, 'data-image': t.image, 'data-slot': t.slot });
        tg.append(el('rect', { x: nx + 6 * m.s, y: ty, width: colW - 12 * m.s, height: m.task, rx: 5 * m.s, fill: hue(t.image) }));
        tg.append(text(nx + 14 * m.s, ty + 18 * m.s, fit(t.service + '.' + (t.slot || n.hostname), colW - 28 * m.s, 8 * m.s), 'name'));
        // The image's last part (web:v2): the version is what a rolling update changes.
        tg.append(text(nx + 14 * m.s, ty + 36 * m.s, fit(t.image.split('/').pop() + ' · ' + t.state, colW - 28 * m.s, 6.8 * m.s)));
        ng.append(tg);
      });
      if (!tasks.length) ng.append(text(nx + m.pad, cy + m.title + 26 * m.s, 'no tasks', 'empty'));
      g.append(ng);
    });
    cy += tallest + m.gap;
    const imgs = [...new Set(s.tasks.map((t) => t.image))];
    let lx = x;
    for (const i of imgs) {
      g.append(el('rect', { x: lx, y: cy, width: 12 * m.s, height: 12 * m.s, fill: hue(i), rx: 2 }), text(lx + 16 * m.s, cy + 11 * m.s, i, 'legend'));
      lx += (i.length * 7 + 40) * m.s;
    }
    cy += m.row + m.gap;
    return { g, h: cy - y };
  }

  // The whole picture for `focus`, `width` pixels wide.
  function draw(model, focus, width, ctx) {
    const m = metrics(ctx.scale);
    const svg = el('svg', { class: 'lab-map-svg', width, role: 'group', 'aria-label': 'Map of your lab', style: 'font-size:' + m.font + 'px' });
    const x = 4; const w = width - 8;
    let y = 4;
    const section = (title, part) => {
      if (title) { svg.append(heading(x, y, title, m)); y += m.title + 4 * m.s; }
      const { g, h } = part;
      svg.append(g);
      y += h + m.gap;
    };
    const all = focus === 'all';
    if (all || focus === 'networks') section(all ? 'Containers and networks' : null, networks(model, x, y + (all ? m.title + 4 * m.s : 0), w, m, ctx));
    if (all || focus === 'images') section(all ? 'Images and their layers' : null, images(model, x, y + (all ? m.title + 4 * m.s : 0), w, m, ctx, null));
    if (focus.startsWith('image=')) section(null, images(model, x, y, w, m, ctx, focus.slice(6)));
    if ((all || focus === 'swarm') && model.swarm) section(all ? 'Swarm' : null, swarm(model, x, y + (all ? m.title + 4 * m.s : 0), w, m));
    if (focus === 'swarm' && !model.swarm) section(null, { g: text(x, y + m.font, 'Not in a swarm yet: docker swarm init starts one.', 'empty'), h: m.row });
    svg.setAttribute('height', Math.ceil(y));
    return svg;
  }

  return { draw, size, imageName };
})();
