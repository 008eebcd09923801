// A learner's path through a lesson in headless Chromium (Debian's, driven
// by playwright-core): catalogue → start a lab → lesson → prompt in the
// terminal → click a runnable block → "Check" turns green. Usage:
//   node tests/browser/lessons.mjs URL SCREENSHOT_DIR
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
  return lines.join('\n');
}).catch(() => '(no page)');
const fail = async (why) => {
  await page.screenshot({ path: `${shots}/lesson-failure.png` }).catch(() => {});
  console.error(why + '\n' + await screen());
  await browser.close();
  process.exit(1);
};
const termHas = (text) => page.waitForFunction((t) => {
  const b = window.berthTerminal && window.berthTerminal.buffer.active;
  if (!b) return false;
  for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes(t)) return true;
  return false;
}, text, { timeout: 60000 });

await page.goto(url);
await page.screenshot({ path: `${shots}/lessons-catalogue.png` });
await page.click('text=Start a lab');
await page.waitForSelector('li.lesson a');
await page.click('li.lesson a >> text=First steps');
await page.waitForSelector('article.lesson h1#first-steps');
try { await termHas('root@node1:~#'); } catch (e) { await fail('no prompt in the terminal'); }
await page.click('button.run');
try { await termHas('--name greeter -e GREETING=hi'); } catch (e) { await fail('the Run button typed nothing'); }
let passed = false;
for (let i = 0; i < 30 && !passed; i++) {
  await page.click('button.check');
  await page.waitForFunction(() => document.querySelector('button.check').textContent === 'Check', null, { timeout: 30000 });
  passed = await page.evaluate(() => document.querySelector('section.exercise').classList.contains('passed'));
  if (!passed) await page.waitForTimeout(500);
}
if (!passed) {
  const detail = await page.textContent('ul.checks');
  await fail('Check never turned green: ' + detail);
}
const marks = await page.$$eval('ul.checks li.passed', (l) => l.length);
await page.screenshot({ path: `${shots}/lesson-passed.png` });
console.log('ok: catalogue, lesson, prompt, run block, check green (' + marks + ' checks)');
await browser.close();
