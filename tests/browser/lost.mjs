// A learner whose runner died (tests/runners.rs): the classroom page shows
// "your lab was lost … start again" with a button, and the button brings a
// fresh lab with a prompt. Usage:
//   node tests/browser/lost.mjs RESUME_URL SCREENSHOT_DIR
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const page = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
if (process.env.DEBUG_WS) { page.on('console', (m) => console.log('console:', m.text())); page.on('websocket', (ws) => { console.log('ws open', ws.url()); ws.on('framereceived', (f) => console.log('recv', String(f.payload).slice(0, 80))); ws.on('close', () => console.log('ws closed')); ws.on('socketerror', (e) => console.log('ws error', e)); }); }
const fail = async (why) => {
  await page.screenshot({ path: `${shots}/lost-failure.png` }).catch(() => {});
  console.error(why);
  await browser.close();
  process.exit(1);
};
// The resume link sets the learner's cookie; then the terminal page.
await page.goto(url);
await page.goto(new URL('/terminal', url).href);
try {
  await page.waitForSelector('#lost:not([hidden])', { timeout: 30000 });
} catch (e) { await fail('no lost-lab notice; status: ' + await page.textContent('#status')); }
const notice = await page.textContent('#lost p');
if (!/your lab was lost/i.test(notice) || !/start again/i.test(notice)) await fail('notice says: ' + notice);
await page.screenshot({ path: `${shots}/lost-notice.png` });
console.log('notice: ' + notice);
await page.click('#lost button');
try {
  await page.waitForFunction(() => window.berthTerminal &&
    (() => { const b = window.berthTerminal.buffer.active; for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes('root@node1:~#')) return true; return false; })(),
  null, { timeout: 60000 });
} catch (e) { await fail('no prompt after starting again'); }
if (await page.isVisible('#lost')) await fail('the notice stayed after starting again');
console.log('started again');
await browser.close();
