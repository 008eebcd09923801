// The editor pane in headless Chromium (Debian's, driven by playwright-core):
// lesson 4's "Open in editor" makes ~/app/Dockerfile and opens it; an edit
// saved with Ctrl+S is what `docker build` in the terminal builds; a change
// made in the terminal shows a reload bar; a save over a file changed on
// disk asks first; a folder uploaded through the tree is there for `ls`; a
// dropped file lands in the folder it was dropped on; a lesson link opens
// its file; leaving with unsaved edits warns. Screenshots at 1366×768 and
// 1024×640 go to SCREENSHOT_DIR (editor-*.png). Usage:
//   node tests/browser/editor.mjs URL SCREENSHOT_DIR
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
  await page.screenshot({ path: `${shots}/editor-failure.png` }).catch(() => {});
  console.error(why + '\n--- terminal ---\n' + await screen());
  await browser.close();
  process.exit(1);
};
const step = async (what, f) => { try { await f(); } catch (e) { await fail(what + ': ' + e.message); } };
const termHas = (text, timeout) => page.waitForFunction((t) => {
  const b = window.berthTerminal && window.berthTerminal.buffer.active;
  if (!b) return false;
  for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString(true).includes(t)) return true;
  return false;
}, text, { timeout: timeout || 60000 });
const type = (text) => page.evaluate((t) => window.berthTerminal.input(t, true), text);
const doc = () => page.evaluate(() => window.berthEditorView.state.doc.toString());
const editorState = () => page.textContent('#editor .file-state');
const tab = (pane) => page.click(`.pane-tabs button[data-pane="${pane}"]`);

await page.goto(url);
await page.click('text=Start a lab');
await page.waitForSelector('li.lesson a');
await page.goto(new URL('/lessons/04-dockerfile-build', url).href);
await step('no prompt in the terminal', () => termHas('root@node1:~#'));

// A lesson's file block: the file is made in the lab and opened.
await page.click('button.file-save[data-path="app/Dockerfile"]');
await step('the lesson block did not open app/Dockerfile', () => page.waitForFunction(() =>
  window.berthEditor.current === 'app/Dockerfile' && /Saved/.test(document.querySelector('#editor .file-state').textContent),
null, { timeout: 30000 }));
if (!(await doc()).includes('CMD ["httpd", "-f", "-p", "5000", "-h", "/app/www"]')) await fail('editor shows: ' + await doc());
if ((await page.textContent('#editor .file-lang')) !== 'Dockerfile') await fail('no Dockerfile highlighting: ' + await page.textContent('#editor .file-lang'));
const tokens = await page.$$eval('#editor .cm-content span', (l) => l.length);
if (tokens < 5) await fail('the Dockerfile is not highlighted (' + tokens + ' spans)');

// Edit in the editor, save with Ctrl+S; the terminal builds the edit.
await page.click('#editor .cm-content');
await page.keyboard.press('Control+End');
await page.keyboard.type('\nLABEL edited=by-the-editor');
if (!(await page.textContent('#editor .file-name')).includes('•')) await fail('an edit does not mark the file unsaved');
await page.screenshot({ path: `${shots}/editor-1366.png` });
await page.keyboard.press('Control+s');
await step('Ctrl+S did not save', () => page.waitForFunction(() =>
  document.querySelector('#editor .file-state').textContent === 'Saved' &&
  !document.querySelector('#editor .file-name').textContent.includes('•'), null, { timeout: 15000 }));
await tab('terminal');
// The terminal is uncovered again: a click reaches it.
if (await page.isVisible('#editor')) await fail('the editor still covers the terminal');
await page.click('#terminal', { timeout: 5000 });
await type("cd ~/app && docker build -q -t edited . >/dev/null && docker inspect -f 'label={{.Config.Labels.edited}}' edited\r");
await step('the build did not use the edit', () => termHas('label=by-the-editor', 120000));

// A change made in the terminal: the open file shows a reload bar.
await type("echo '# changed in the terminal' >> ~/app/Dockerfile\r");
await tab('editor');
await step('no reload bar after a change in the terminal', () =>
  page.waitForSelector('#editor .changed-bar:not([hidden])', { timeout: 15000 }));
await page.screenshot({ path: `${shots}/editor-reload-bar.png` });
await page.click('#editor .changed-bar button[data-act="reload"]');
await step('reload did not load the new content', () => page.waitForFunction(() =>
  window.berthEditorView.state.doc.toString().includes('# changed in the terminal'), null, { timeout: 15000 }));

// An unsaved edit over a file changed on disk: the save asks, and
// "cancel" keeps both the disk's version and the edit.
await page.click('#editor .cm-content');
await page.keyboard.press('Control+End');
await page.keyboard.type('\n# my unsaved edit');
await tab('terminal');
await type("echo '# second terminal change' >> ~/app/Dockerfile\r");
await tab('editor');
let asked = '';
page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
await page.click('#editor button[data-act="save"]');
await step('the stale save did not ask', () => page.waitForFunction(() =>
  /changed on disk/.test(document.querySelector('#editor .file-state').textContent), null, { timeout: 15000 }));
if (!asked.includes('changed on disk')) await fail('no question before overwriting: ' + asked);
if (!(await doc()).includes('# my unsaved edit')) await fail('the unsaved edit was lost');
await tab('terminal');
await type("echo disk=$(grep -c 'second terminal change' ~/app/Dockerfile)/$(grep -c 'my unsaved edit' ~/app/Dockerfile)\r");
await step('the refused save overwrote the file (want disk=1/0)', () => termHas('disk=1/0', 15000));

// Leaving the page with that unsaved edit warns.
await tab('editor');
let unload = '';
page.once('dialog', (d) => { unload = d.type(); d.dismiss(); });
await page.evaluate(() => { window.berthTestNavigating = true; });
await page.close({ runBeforeUnload: true }).catch(() => {});
await page.waitForTimeout(1000);
if (unload !== 'beforeunload') await fail('leaving with unsaved edits did not warn (' + unload + ')');
// The page is still open (the learner stayed): discard the edit to go on.
await page.evaluate(() => window.berthEditor.open('app/Dockerfile')).catch(() => {});

// A folder uploaded through the tree's folder button, then `ls` in the shell.
const local = mkdtempSync('/tmp/berth-editor-upload-');
mkdirSync(join(local, 'site', 'css'), { recursive: true });
writeFileSync(join(local, 'site', 'index.html'), '<h1>uploaded</h1>\n');
writeFileSync(join(local, 'site', 'css', 'style.css'), 'h1 { color: teal }\n');
await page.click('#editor .tree-root .entry');
await page.setInputFiles('#editor input.upload-folder', join(local, 'site'));
await step('the uploaded folder is not in the tree', () =>
  page.waitForSelector('#editor li[data-path="site"]', { timeout: 30000 }));
// A file dropped on that folder lands in it.
const dt = await page.evaluateHandle(() => {
  const d = new DataTransfer();
  d.items.add(new File(['dropped on site\n'], 'dropped.txt', { type: 'text/plain' }));
  return d;
});
await page.dispatchEvent('#editor li[data-path="site"] > .entry', 'drop', { dataTransfer: dt });
await step('the dropped file did not arrive', () => page.waitForFunction(() =>
  document.querySelector('#editor .file-state').textContent === 'Uploaded', null, { timeout: 30000 }));
// The folder a file was dropped on opens in the tree, showing it.
await step('the tree does not show the dropped file in its folder', () =>
  page.waitForSelector('#editor li[data-path="site/dropped.txt"]', { timeout: 15000 }));
await step('the tree does not show the uploaded subfolder', () =>
  page.waitForSelector('#editor li[data-path="site/css"]', { timeout: 15000 }));
await page.screenshot({ path: `${shots}/editor-uploaded.png` });
await tab('terminal');
await type('ls -R ~/site; cat ~/site/dropped.txt\r');
await step('ls does not show the upload', () => termHas('style.css'));
await step('the dropped file is not in site/', () => termHas('dropped on site'));
if (!(await screen()).includes('index.html')) await fail('index.html missing from the upload');

// A lesson link opens its file.
await page.click('a.open-file[data-path="app/www/facts.txt"]');
await step('the lesson link did not open facts.txt', () => page.waitForFunction(() =>
  window.berthEditor.current === 'app/www/facts.txt' && window.berthEditorView.state.doc.toString().includes('blobfish'),
null, { timeout: 30000 }));
await page.setViewportSize({ width: 1024, height: 640 });
await page.waitForTimeout(500);
await page.screenshot({ path: `${shots}/editor-1024.png` });
// Split view: the editor above the terminal.
await page.click('.pane-tabs .pane-split');
await page.waitForTimeout(500);
await page.screenshot({ path: `${shots}/editor-split-1024.png` });
const rows = await page.evaluate(() => window.berthTerminal.rows);
if (rows < 5) await fail('the terminal has ' + rows + ' rows in split view');
console.log('ok: lesson block opened, edit built, reload bar, stale save asked, unload warned, folder uploaded, drop, lesson link, split');
await browser.close();
