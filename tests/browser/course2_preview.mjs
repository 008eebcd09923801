// Lesson 5 in headless Chromium: start a lab, open 05-ports, click the Run
// buttons that publish the app on 80 and three copies on 8081-8083, wait
// for the "Open app:" links, open each through the preview and read the
// page: a fact (cgi-bin/fact) and the serving container's name
// (cgi-bin/host). Prints one line per link. Usage:
//   node tests/browser/course2_preview.mjs URL SCREENSHOT_DIR
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const page = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
const fail = async (why) => {
  await page.screenshot({ path: `${shots}/course2-preview-failure.png` }).catch(() => {});
  console.error(why);
  await browser.close();
  process.exit(1);
};
await page.goto(url);
await page.click('text=Start a lab');
await page.waitForSelector('li.lesson a');
await page.goto(new URL('/lessons/05-ports', url).href);
try {
  await page.waitForFunction(() => window.berthTerminal && (() => {
    const b = window.berthTerminal.buffer.active;
    for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes('root@node1:')) return true;
    return false;
  })(), null, { timeout: 60000 });
} catch (e) { await fail('no prompt'); }
// The lesson's setup builds the image in the background: wait for it.
for (let i = 0; i < 150; i++) {
  const list = await (await page.request.get(new URL('/api/lessons', url).href)).json();
  const me = list.find((l) => l.slug === '05-ports');
  if (!me || !me.setup || me.setup === 'done') break;
  await page.waitForTimeout(200);
}
const click = async (command) => {
  const b = page.locator(`button.run[data-command^="${command}"]`);
  if (await b.count() !== 1) await fail(`no single Run button for ${command}`);
  await b.click();
};
await click('docker run -d --name facts -p 80:5000');
await page.waitForTimeout(1500);
await click('docker run -d --name fish1');
try {
  await page.waitForFunction(() => document.querySelectorAll('#ports a').length >= 4, null, { timeout: 60000 });
} catch (e) { await fail('the header never listed four published ports'); }
await page.screenshot({ path: `${shots}/course2-preview-links.png` });
const links = await page.$$eval('#ports a', (l) => l.map((a) => [a.textContent, a.href]));
for (const [label, href] of links) {
  const tab = await page.context().newPage();
  await tab.goto(href);
  try {
    await tab.waitForFunction(() => {
      const host = document.getElementById('host').textContent;
      const fact = document.getElementById('fact').textContent;
      return host && host !== '?' && !fact.startsWith('Loading');
    }, null, { timeout: 30000 });
  } catch (e) { await fail(`${label}: the page never showed its container`); }
  const host = await tab.textContent('#host');
  const fact = await tab.textContent('#fact');
  await tab.screenshot({ path: `${shots}/course2-preview${label.replace(':', '-')}.png` });
  console.log(`${label} host=${host.trim()} fact=${fact.trim()}`);
  await tab.close();
}
console.log(`ok: ${links.length} previews`);
await browser.close();
