// Lesson 4 walked end to end in headless Chromium (Debian's, driven by
// playwright-core), as a learner would: catalogue → start a lab → the
// lesson → read it → click every runnable block in order, waiting for the
// lab's prompt after each (a file block's "Open in editor" saves its file
// through the editor; the learner goes back to the terminal's tab) → click
// each exercise's Check until it is green.
// Screenshots go to SCREENSHOT_DIR (course-lesson4-*.png). Usage:
//   node tests/browser/course.mjs URL SCREENSHOT_DIR
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const page = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
const screen = () => page.evaluate(() => {
  if (!window.berthTerminal) return '(no terminal)';
  const b = window.berthTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n').replace(/\n+$/, '');
}).catch(() => '(no page)');
const fail = async (why) => {
  await page.screenshot({ path: `${shots}/course-lesson4-failure.png` }).catch(() => {});
  console.error(why + '\n--- terminal ---\n' + await screen());
  await browser.close();
  process.exit(1);
};
// The terminal's text and whether its cursor sits on a bare shell prompt.
const state = () => page.evaluate(() => {
  const b = window.berthTerminal.buffer.active;
  // Lines the terminal wrapped are joined back, so long commands match.
  const lines = [];
  for (let i = 0; i < b.length; i++) {
    const line = b.getLine(i);
    if (line.isWrapped && lines.length) lines[lines.length - 1] += line.translateToString(true);
    else lines.push(line.translateToString(true));
  }
  const cursor = b.getLine(b.baseY + b.cursorY).translateToString(true);
  return { text: lines.join('\n'), cursor, prompt: /^root@node1:\S*#$/.test(cursor.trimEnd()) };
});
// Waits until the terminal changed from `before` and then shows a bare
// prompt that stays for a second (a multi-line block has finished).
const settle = async (before, what) => {
  const deadline = Date.now() + 180000;
  let since = 0;
  for (;;) {
    const s = await state();
    if (s.text !== before && s.prompt) {
      if (!since) since = Date.now();
      if (Date.now() - since >= 1000) return s.text;
    } else {
      since = 0;
    }
    if (Date.now() > deadline) await fail(`no prompt after ${what} (cursor line ${JSON.stringify(s.cursor)}, changed ${s.text !== before})`);
    await page.waitForTimeout(150);
  }
};
const check = async (exercise) => {
  const box = `section.exercise[data-exercise="${exercise}"]`;
  let passed = false;
  for (let i = 0; i < 40 && !passed; i++) {
    await page.click(`${box} button.check`);
    await page.waitForFunction((b) => document.querySelector(`${b} button.check`).textContent === 'Check', box, { timeout: 60000 });
    passed = await page.evaluate((b) => document.querySelector(b).classList.contains('passed'), box);
    if (!passed) await page.waitForTimeout(500);
  }
  if (!passed) await fail(`exercise ${exercise} never turned green: ` + await page.textContent(`${box} ul.checks`));
  const marks = await page.$$eval(`${box} ul.checks li.passed`, (l) => l.length);
  const total = await page.$$eval(`${box} ul.checks li`, (l) => l.length);
  if (marks !== total) await fail(`exercise ${exercise}: ${marks}/${total} checks marked`);
  await page.$eval(box, (el) => el.scrollIntoView({ block: 'center' }));
  await page.screenshot({ path: `${shots}/course-lesson4-${exercise}-green.png` });
  return total;
};

await page.goto(url);
await page.click('text=Start a lab');
await page.waitForSelector('li.lesson a');
await page.click('li.lesson a >> text=Dockerfile and docker build');
await page.waitForSelector('article.lesson h1#dockerfile-and-docker-build');
try {
  await page.waitForFunction(() => window.berthTerminal && (() => {
    const b = window.berthTerminal.buffer.active;
    for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes('root@node1:~#')) return true;
    return false;
  })(), null, { timeout: 60000 });
} catch (e) { await fail('no prompt in the terminal'); }
await page.screenshot({ path: `${shots}/course-lesson4-start.png` });

// Read: the page has the lesson's sections, exercises and blocks.
const headings = await page.$$eval('article.lesson h2', (l) => l.map((h) => h.id));
for (const want of ['the-app-blobfish-facts', 'the-dockerfile', 'build-and-tag', 'run-it', 'rebuild-and-watch-the-cache']) {
  if (!headings.includes(want)) await fail(`no section ${want} in ${headings}`);
}
const blocks = await page.$$('button.run, button.file-save');
const exercises = await page.$$eval('section.exercise', (l) => l.map((s) => s.dataset.exercise));
if (exercises.join() !== 'build,run,rebuild') await fail('exercises: ' + exercises);

// Each exercise is checked once the blocks above it have run.
const exerciseAfter = await page.evaluate(() => {
  const all = [...document.querySelectorAll('button.run, button.file-save, section.exercise')];
  const out = {};
  let runs = 0;
  for (const el of all) {
    if (el.matches('button')) runs++; else out[runs] = el.dataset.exercise;
  }
  return out;
});
let checks = 0;
let text = (await state()).text;
for (let i = 0; i < blocks.length; i++) {
  const file = await blocks[i].getAttribute('data-path');
  if (file) {
    await blocks[i].scrollIntoViewIfNeeded();
    await blocks[i].click();
    try {
      await page.waitForFunction((f) => window.berthEditor && window.berthEditor.current === f &&
        /Saved/.test(document.querySelector('#editor .file-state').textContent), file, { timeout: 30000 });
    } catch (e) { await fail(`block ${i + 1}: ${file} was not saved through the editor`); }
    await page.click('.pane-tabs button[data-pane="terminal"]');
    continue;
  }
  const command = await blocks[i].getAttribute('data-command');
  await blocks[i].scrollIntoViewIfNeeded();
  await blocks[i].click();
  text = await settle(text, `block ${i + 1}: ${command}`);
  // The shell's line editor breaks long lines itself: compare without breaks.
  const flat = text.replace(/\n/g, '');
  const first = command.split('\n')[0];
  if (!flat.includes(first)) await fail(`block ${i + 1} was not typed: ${first}`);
  if (/Error response from daemon|not found|No such file/.test(flat.slice(flat.lastIndexOf(first)))) {
    await fail(`block ${i + 1} failed: ${command}`);
  }
  if (i === 3) await page.screenshot({ path: `${shots}/course-lesson4-built.png` });
  const exercise = exerciseAfter[i + 1];
  if (exercise) checks += await check(exercise);
}
if (!text.includes('Using cache')) await fail('the rebuild did not use the cache');
if (!text.replace(/\n/g, '').includes("voted the world's ugliest animal.")) await fail('blobfish2 does not have the new fact');
const green = await page.$$eval('section.exercise.passed', (l) => l.length);
if (green !== 3) await fail(`${green}/3 exercises green`);
await page.screenshot({ path: `${shots}/course-lesson4-done.png` });
console.log(`ok: lesson 4 read, ${blocks.length} blocks run, 3 exercises green (${checks} checks)`);
await browser.close();
