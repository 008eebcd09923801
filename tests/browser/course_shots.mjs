// Screenshots of the course's lessons 1–4 at 1366×768 and 1920×1080 in
// headless Chromium: each lesson's top, its first exercise and its end,
// with the lab's prompt showing. Usage:
//   node tests/browser/course_shots.mjs URL SCREENSHOT_DIR SLUG...
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [url, shots, ...slugs] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
let taken = 0;
for (const [width, height] of [[1366, 768], [1920, 1080]]) {
  const page = await (await browser.newContext({ viewport: { width, height } })).newPage();
  await page.goto(url);
  await page.click('text=Start a lab');
  await page.waitForSelector('li.lesson a');
  await page.screenshot({ path: `${shots}/course-catalogue-${width}x${height}.png` });
  for (const slug of slugs) {
    await page.goto(new URL(`/lessons/${slug}`, url).href);
    await page.waitForSelector('article.lesson h1');
    try {
      await page.waitForFunction(() => window.berthTerminal && (() => {
        const b = window.berthTerminal.buffer.active;
        for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes('root@node1:')) return true;
        return false;
      })(), null, { timeout: 60000 });
    } catch (e) {
      console.error(`${slug}: no prompt at ${width}x${height}`);
      await page.screenshot({ path: `${shots}/course-failure.png` });
      process.exit(1);
    }
    // Overflow a learner would have to scroll sideways for.
    const wide = await page.$$eval('article.lesson pre, article.lesson table',
      (l) => l.filter((e) => e.scrollWidth > e.clientWidth + 1).length);
    const name = `${shots}/course-${slug}-${width}x${height}`;
    await page.screenshot({ path: `${name}-top.png` });
    await page.$eval('section.exercise', (el) => el.scrollIntoView({ block: 'start' }));
    await page.screenshot({ path: `${name}-exercise.png` });
    await page.$eval('article.lesson', (el) => { el.scrollTop = el.scrollHeight; });
    await page.screenshot({ path: `${name}-end.png` });
    taken += 3;
    console.log(`${slug} ${width}x${height}: ${wide} block(s) wider than the column`);
  }
  await page.context().close();
}
console.log(`ok: ${taken} lesson screenshots`);
await browser.close();
