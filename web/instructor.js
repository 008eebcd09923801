// The instructor's console: log in (account or admin token), make a
// workshop, list workshops with links to the board, the projector and the
// access cards, open the shared registry, delete a workshop and its data.
'use strict';

// "2 Dec 10:41 – 13:41" in the instructor's own time zone (the ISO
// timestamps stay in the cell's title).
function when(start, end) {
  const a = new Date(start); const b = new Date(end);
  if (isNaN(a) || isNaN(b)) return start + ' – ' + end;
  const day = (d) => d.toLocaleDateString(undefined, { day: 'numeric', month: 'short' });
  const time = (d) => d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  return day(a) + ' ' + time(a) + ' – ' + (day(a) === day(b) ? '' : day(b) + ' ') + time(b);
}

const $ = (id) => document.getElementById(id);
const el = (tag, attrs, text) => { const e = document.createElement(tag); Object.assign(e, attrs || {}); if (text !== undefined) e.textContent = text; return e; };
const iso = (local) => local ? new Date(local).toISOString().replace(/\.\d+Z$/, 'Z') : undefined;

async function load() {
  const me = await berthApi('GET', '/api/instructor');
  $('login-box').hidden = me.status === 200; $('console').hidden = me.status !== 200; $('logout').hidden = me.status !== 200;
  if (me.status !== 200) return;
  $('who').textContent = me.data.name; $('add-instructor').hidden = !me.data.admin;
  const lessons = await berthApi('GET', '/api/lessons');
  $('w-lessons').replaceChildren(...(lessons.data || []).map((l) => el('option', { value: l.slug, selected: true }, l.title)));
  const list = await berthApi('GET', '/api/workshops');
  $('workshops').tBodies[0].replaceChildren(...(list.data || []).map((w) => {
    const tr = el('tr');
    tr.append(el('td', {}, w.title), el('td', { className: 'code' }, w.code), el('td', { title: w.starts_at + ' – ' + w.ends_at }, when(w.starts_at, w.ends_at)), el('td', {}, w.joined + '/' + w.seats));
    const td = el('td');
    td.append(el('a', { href: w.board_url }, 'Board'), ' ', el('a', { href: w.present_url }, 'Projector'), ' ', el('a', { href: w.cards_url }, 'Cards'), ' ');
    const reg = el('button', { type: 'button' }, w.shared_registry ? 'Registry: ' + w.shared_registry : 'Open shared registry');
    reg.onclick = async () => { await berthApi('POST', '/api/workshops/' + w.id + '/registry'); load(); };
    const del = el('button', { type: 'button' }, 'Delete');
    del.onclick = async () => { if (confirm('End every lab of "' + w.title + '" and delete its data?')) { await berthApi('DELETE', '/api/workshops/' + w.id); load(); } };
    td.append(reg, ' ', del); tr.append(td); return tr;
  }));
}

$('login').onsubmit = async (ev) => {
  ev.preventDefault();
  const token = $('admin-token').value;
  const body = token ? { admin_token: token } : { username: $('username').value, password: $('password').value };
  const r = await berthApi('POST', '/api/instructor/login', body);
  $('login-status').textContent = r.status === 200 ? '' : ((r.data && r.data.message) || 'HTTP ' + r.status);
  load();
};
$('logout').onclick = async () => { await berthApi('POST', '/api/instructor/logout'); load(); };
$('create').onsubmit = async (ev) => {
  ev.preventDefault();
  const body = { title: $('w-title').value, lessons: [...$('w-lessons').selectedOptions].map((o) => o.value),
    seats: Number($('w-seats').value), starts_at: iso($('w-start').value), ends_at: iso($('w-end').value) };
  const r = await berthApi('POST', '/api/workshops', body);
  $('create-status').textContent = r.status === 201 ? 'Created: code ' + r.data.code : ((r.data && r.data.message) || 'HTTP ' + r.status);
  load();
};
$('add-instructor').onsubmit = async (ev) => {
  ev.preventDefault();
  const r = await berthApi('POST', '/api/instructors', { username: $('i-user').value, password: $('i-pass').value });
  $('instructor-status').textContent = r.status === 201 ? 'Added ' + r.data.username : ((r.data && r.data.message) || 'HTTP ' + r.status);
};
load();
