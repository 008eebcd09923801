// Opens the classroom in headless Chromium (Debian's, driven by
// playwright-core), waits for the lab's prompt in xterm, types a command
// and reads its output back from the terminal. Usage:
//   node tests/browser/classroom.mjs URL SCREENSHOT_DIR
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const fail = async (page, why) => {
  await page.screenshot({ path: `${shots}/classroom-failure.png` }).catch(() => {});
  console.error(why);
  await browser.close();
  process.exit(1);
};
const screen = (page) => page.evaluate(() => {
  const b = window.berthTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n');
});
const page = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
await page.goto(url);
try {
  await page.waitForFunction(() => window.berthTerminal &&
    (() => { const b = window.berthTerminal.buffer.active; for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes('root@node1:~#')) return true; return false; })(),
  null, { timeout: 60000 });
} catch (e) { await fail(page, 'no prompt in the terminal:\n' + await screen(page)); }
await page.click('#terminal');
await page.keyboard.type('echo "browser-$((40+2))"');
await page.keyboard.press('Enter');
try {
  await page.waitForFunction(() => { const b = window.berthTerminal.buffer.active;
    for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().trim() === 'browser-42') return true; return false; },
  null, { timeout: 30000 });
} catch (e) { await fail(page, 'no output for the typed command:\n' + await screen(page)); }
const countdown = await page.textContent('#countdown');
await page.screenshot({ path: `${shots}/classroom-prompt.png` });
console.log('ok: prompt, typed command answered; countdown: ' + countdown);
await browser.close();
