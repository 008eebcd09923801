// The classroom terminal's copy, paste and flow control in headless
// Chromium (Debian's, driven by playwright-core), with clipboard access
// granted as a learner's browser would after the first prompt. Usage:
//   node tests/browser/terminal.mjs URL SCREENSHOT_DIR
// Judges by what the shell in the lab did with the input (files, their
// checksums, command output in the terminal) and by the clipboard.
import { createHash } from 'node:crypto';
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const origin = new URL(url).origin;
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
const screen = () => page.evaluate(() => {
  const b = window.berthTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n');
});
const fail = async (why) => {
  await page.screenshot({ path: `${shots}/terminal-failure.png` }).catch(() => {});
  console.error(why + '\n--- screen:\n' + await screen().catch(() => '') + '\n--- page errors:\n' + errors.join('\n'));
  await browser.close();
  process.exit(1);
};
// Waits until a line of the terminal, trimmed, is exactly `text`.
const line = async (text, what, timeout = 30000) => {
  try {
    await page.waitForFunction((t) => {
      const b = window.berthTerminal.buffer.active;
      for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString(true).trim() === t) return true;
      return false;
    }, text, { timeout });
  } catch (e) { await fail(`${what}: no line "${text}" in the terminal`); }
};
const run = async (command) => {
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
};
const md5 = (s) => createHash('md5').update(s).digest('hex');

await page.goto(url);
try {
  await page.waitForFunction(() => window.berthTerminal &&
    (() => { const b = window.berthTerminal.buffer.active; for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes('root@node1:~#')) return true; return false; })(),
  null, { timeout: 90000 });
} catch (e) { await fail('no prompt in the terminal'); }
await page.click('#terminal');
const bracketed = await page.evaluate(() => window.berthTerminal.modes.bracketedPasteMode);

// Input is split into frames under the server's message limit, never
// inside a surrogate pair (an emoji across the 8192-unit boundary).
const split = await page.evaluate(() => {
  const frames = [];
  const text = 'a'.repeat(8191) + '\u{1F600}' + 'b'.repeat(9000);
  berthSendInput((m) => frames.push(m.data), text, () => {});
  return { n: frames.length, whole: frames.join('') === text, cut: frames.some((f) => /[\ud800-\udbff]$/.test(f)) };
});
if (split.n !== 3 || !split.whole || split.cut) await fail('input frames: ' + JSON.stringify(split));

// 1. A multi-line command from the clipboard with Ctrl+Shift+V: a heredoc
// with quotes, a `$` and indentation, then a line that runs it. (No tab:
// busybox ash does not ask for bracketed paste, so a pasted tab is typed,
// and a typed tab completes.)
const script = 'echo "hello, $1"\n  # two spaces, \'quotes\' and $HOME\n';
const pasted = 'mkdir -p /tmp/p && cd /tmp/p\ncat > greet.sh <<\'EOF\'\n' + script + 'EOF\nsh greet.sh pasted-$((40+2))\n';
await page.evaluate((t) => navigator.clipboard.writeText(t), pasted);
await page.keyboard.press('Control+Shift+V');
await line('hello, pasted-42', 'the pasted multi-line command');
await run('md5sum greet.sh');
await line(md5(script) + '  greet.sh', 'the pasted heredoc arrived intact');

// A program that asks for bracketed paste (as bash does; here `cat`
// after printf turns the mode on) gets the paste between the markers.
await run("printf '\\033[?2004h'; cat > bracketed.txt");
await page.evaluate(() => navigator.clipboard.writeText('one\ntwo'));
await page.keyboard.press('Control+Shift+V');
await page.keyboard.press('Control+D');
await page.keyboard.press('Control+D');
await run("printf '\\033[?2004l'; tr '\\033' E < bracketed.txt; echo");
await line('E[200~one', 'a bracketed paste');
await line('twoE[201~', 'the end of a bracketed paste');

// 2. A 20 KB paste through the context menu's Paste: a right click puts
// xterm's textarea under the mouse; the menu's Paste is a `paste` event
// on it (headless Chromium draws no native menu to click).
let big = '';
for (let i = 0; big.length < 20000; i++) big += `line ${String(i).padStart(4, '0')} ` + 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2) + '\n';
const box = await page.locator('#terminal').boundingBox();
await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2, { button: 'right' });
await page.evaluate((text) => {
  const dt = new DataTransfer();
  dt.setData('text/plain', text);
  document.activeElement.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
}, 'cat > big.txt <<\'EOF\'\n' + big + 'EOF\n');
await run('clear; wc -c < big.txt; md5sum big.txt');
await line(String(Buffer.byteLength(big)), `the ${big.length}-byte paste arrived whole`, 60000);
await line(md5(big) + '  big.txt', 'the large paste arrived intact');

// A paste larger than the shell's input queue is refused whole, with a
// message, not cut short: nothing of it reaches the shell.
await page.evaluate((text) => {
  const dt = new DataTransfer();
  dt.setData('text/plain', text);
  document.activeElement.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
}, 'echo too-big-' + 'x'.repeat(100 * 1024) + '\n');
try {
  await page.waitForFunction(() => document.getElementById('status').textContent.includes('Paste it in parts'), null, { timeout: 10000 });
} catch (e) { await fail('no message for a paste larger than the input queue'); }
await run('clear; echo "still-$((6*7))"');
await line('still-42', 'the terminal after a refused paste');
if ((await screen()).includes('too-big-')) await fail('part of the refused paste reached the shell');

// 3. Selecting with the mouse copies to the clipboard; Ctrl+Shift+C too.
await run('clear; echo "copy-$((6*7))-me"');
await line('copy-42-me', 'the line to select');
const cells = await page.evaluate(() => {
  const t = window.berthTerminal;
  const b = t.buffer.active;
  let row = -1;
  for (let i = 0; i < t.rows; i++) if (b.getLine(b.viewportY + i).translateToString(true).trim() === 'copy-42-me') row = i;
  const r = t.element.querySelector('.xterm-screen').getBoundingClientRect();
  return { row, x: r.x, y: r.y, w: r.width / t.cols, h: r.height / t.rows };
});
if (cells.row < 0) await fail('the line to select is not on screen');
await page.evaluate(() => navigator.clipboard.writeText('nothing yet'));
const y = cells.y + (cells.row + 0.5) * cells.h;
await page.mouse.move(cells.x + 0.2 * cells.w, y);
await page.mouse.down();
await page.mouse.move(cells.x + 5 * cells.w, y, { steps: 5 });
await page.mouse.move(cells.x + 9.8 * cells.w, y, { steps: 5 });
await page.mouse.up();
await page.waitForTimeout(300);
const selected = await page.evaluate(() => navigator.clipboard.readText());
if (selected !== 'copy-42-me') await fail(`selecting did not copy: the clipboard holds ${JSON.stringify(selected)}`);
await page.evaluate(() => navigator.clipboard.writeText('overwritten'));
await page.keyboard.press('Control+Shift+C');
await page.waitForTimeout(300);
const copied = await page.evaluate(() => navigator.clipboard.readText());
if (copied !== 'copy-42-me') await fail(`Ctrl+Shift+C did not copy: the clipboard holds ${JSON.stringify(copied)}`);
await page.screenshot({ path: `${shots}/terminal-selection.png` });

// 4. A `yes` flood, then Ctrl-C: the terminal answers again.
await page.click('#terminal');
await run('yes');
await page.waitForTimeout(3000);
await page.keyboard.press('Control+C');
await run('echo "after-$((6*7))"');
await line('after-42', 'the terminal after a yes flood and Ctrl-C', 60000);
await page.screenshot({ path: `${shots}/terminal-after-flood.png` });
console.log(`ok: multi-line paste, 20 KB paste, 100 KB paste refused, copy on select, Ctrl+Shift+C, flood then Ctrl-C (bracketed paste mode: ${bracketed})`);
await browser.close();
