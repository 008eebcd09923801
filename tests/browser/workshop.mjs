// The workshop in headless Chromium (Debian's, driven by playwright-core):
// the instructor's progress board turns a learner's cell green without a
// reload when the learner passes an exercise in their own lab; the
// instructor types in the projector view and the learner's "Presenter" tab
// shows it. Usage:
//   node tests/browser/workshop.mjs BASE_URL SCREENSHOT_DIR CONFIG_JSON
// CONFIG_JSON: {"id", "code", "instructor", "learner"} (cookie values).
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [base, shots, configJson] = process.argv.slice(2);
const cfg = JSON.parse(configJson);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const pages = [];
const fail = async (why) => {
  for (const [i, p] of pages.entries()) await p.screenshot({ path: `${shots}/workshop-failure-${i}.png` }).catch(() => {});
  console.error(why);
  await browser.close();
  process.exit(1);
};
const screenOf = (page, name) => page.evaluate((name) => {
  const t = window[name]; if (!t) return '';
  const b = t.buffer.active; const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n');
}, name);
const waitScreen = async (page, name, needle, what) => {
  try {
    await page.waitForFunction(([name, needle]) => {
      const t = window[name]; if (!t) return false;
      const b = t.buffer.active;
      for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes(needle)) return true;
      return false;
    }, [name, needle], { timeout: 90000 });
  } catch (e) { await fail(what + ': no ' + needle + ' in\n' + await screenOf(page, name)); }
};
const contextWith = async (cookie) => {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  await ctx.addCookies([{ name: cookie[0], value: cookie[1], url: base }]);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') console.error('console: ' + m.text()); });
  pages.push(page);
  return page;
};

// The instructor's board: one learner so far, no passes yet.
const board = await contextWith(['berth_instructor', cfg.instructor]);
await board.goto(`${base}/workshops/${cfg.id}/board`);
try {
  await board.waitForFunction(() => document.querySelectorAll('#rows tr').length === 1, null, { timeout: 30000 });
} catch (e) { await fail('the board shows no rows: ' + await board.content()); }

// Bob joins with the card's link: the form has the code, he types his name.
const bob = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
pages.push(bob);
await bob.goto(`${base}/w/${cfg.code}`);
if (await bob.inputValue('#code') !== cfg.code) await fail('the join form lacks the code');
await bob.fill('#name', 'Bob');
await bob.screenshot({ path: `${shots}/workshop-join-form.png` });
await bob.click('#join button[type=submit]');
await waitScreen(bob, 'berthTerminal', 'root@node1:~#', "Bob's lab after joining");
console.log('ok: Bob joined through the form');
// His row appears on the board by itself.
try {
  await board.waitForFunction(() => document.querySelectorAll('#rows tr').length === 2, null, { timeout: 10000 });
} catch (e) { await fail('Bob did not appear on the board'); }
const cell = `#cell-${cfg.learner_id}-01-quick_made`;
if (await board.$eval(cell, (c) => c.classList.contains('passed'))) await fail('passed before the learner did anything');
await board.screenshot({ path: `${shots}/workshop-board-before.png` });

// The learner passes the exercise in their own lab.
const learner = await contextWith(['berth_session', cfg.learner]);
await learner.goto(`${base}/w/${cfg.code}`);
await waitScreen(learner, 'berthTerminal', 'root@node1:~#', 'the learner lab');
await learner.click('#lab-term', { timeout: 90000 });
await learner.keyboard.type('docker create --name hello busybox && echo made-$((40+2))');
await learner.keyboard.press('Enter');
await waitScreen(learner, 'berthTerminal', 'made-42', 'docker create');
const checked = await learner.evaluate(async () => {
  const r = await fetch('/api/lessons/01-quick/check', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ exercise: 'made' }) });
  return (await r.json()).exercises[0].passed;
});
if (!checked) await fail('the check did not pass');

// The board turns the cell green by itself (no reload).
try {
  await board.waitForFunction((sel) => { const c = document.querySelector(sel); return c && c.classList.contains('passed'); }, cell, { timeout: 10000 });
} catch (e) { await fail('the cell did not turn green'); }
const color = await board.$eval(cell, (c) => getComputedStyle(c).backgroundColor);
const count = await board.textContent('#counts td.count');
await board.screenshot({ path: `${shots}/workshop-board-green.png` });

// Demo: the instructor types on the projector; the learner's Presenter tab shows it.
const present = await contextWith(['berth_instructor', cfg.instructor]);
await present.goto(`${base}/workshops/${cfg.id}/present`);
await present.click('#start');
await waitScreen(present, 'berthTerminal', 'root@node1:~#', 'the projector');
await present.click('#terminal');
await present.keyboard.type('echo demo-$((6*7))');
await present.keyboard.press('Enter');
await waitScreen(present, 'berthTerminal', 'demo-42', 'the projector');
const fontSize = await present.evaluate(() => window.berthTerminal.options.fontSize);
await present.screenshot({ path: `${shots}/workshop-projector.png` });
await learner.click('#tab-presenter');
await waitScreen(learner, 'berthPresenter', 'demo-42', "the learner's presenter tab");
// The learner selects the command in the presenter and pastes it into their own lab.
const selected = await learner.evaluate(() => {
  const t = window.berthPresenter; const b = t.buffer.active;
  for (let i = 0; i < b.length; i++) {
    const line = b.getLine(i).translateToString(true); const at = line.indexOf('echo demo-');
    if (at >= 0) { t.select(at, i, line.length - at); return t.getSelection(); }
  }
  return '';
});
if (selected !== 'echo demo-$((6*7))') await fail('selected ' + JSON.stringify(selected));
await learner.screenshot({ path: `${shots}/workshop-presenter-tab.png` });
await learner.click('#paste');
await learner.click('#lab-term', { timeout: 90000 });
await learner.keyboard.press('Enter');
await waitScreen(learner, 'berthTerminal', 'demo-42', "the learner's lab after pasting");
await learner.screenshot({ path: `${shots}/workshop-pasted-into-lab.png` });
// The instructor's console lists the workshop; the access cards print one per seat.
const consolePage = await contextWith(['berth_instructor', cfg.instructor]);
await consolePage.goto(`${base}/instructor`);
try {
  await consolePage.waitForFunction((code) => [...document.querySelectorAll('#workshops td.code')].some((td) => td.textContent === code), cfg.code, { timeout: 10000 });
} catch (e) { await fail('the console does not list the workshop'); }
await consolePage.screenshot({ path: `${shots}/workshop-instructor-console.png` });
console.log('ok: console lists the workshop');
await consolePage.goto(`${base}/workshops/${cfg.id}/cards`);
const cards = await consolePage.$$eval('.card', (c) => c.length);
await consolePage.screenshot({ path: `${shots}/workshop-cards.png`, fullPage: true });
console.log(`ok: ${cards} access cards`);
// Every page at projector size too (1920×1080), as shown in a classroom.
for (const [name, page] of [['board', board], ['projector', present], ['learner', learner], ['join-lab', bob]]) {
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${shots}/workshop-${name}-1920x1080.png` });
}
await consolePage.goto(`${base}/instructor`);
await consolePage.setViewportSize({ width: 1920, height: 1080 });
await consolePage.screenshot({ path: `${shots}/workshop-instructor-console-1920x1080.png` });
const projectorFont = await present.evaluate(() => window.berthTerminal.options.fontSize);
if (projectorFont < fontSize) await fail(`the projector font shrank to ${projectorFont}px at 1920x1080`);
console.log(`ok: board green (${color}, ${count}), projector font ${fontSize}px, presenter shows demo-42, pasted into the lab`);
await browser.close();
