// The lab shell's terminal size equals the size xterm shows, at laptop and
// projector sizes and after the window is resized: `stty size` in the lab
// against xterm's rows/cols, and the columns that fit the terminal's box.
// Usage: node tests/browser/terminal_size.mjs URL SCREENSHOT_DIR SLUG
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [url, shots, slug] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const screen = (page) => page.evaluate(() => {
  const b = window.berthTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n');
});
let failed = false;
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
const page = await context.newPage();
await page.goto(url);
await page.click('text=Start a lab');
await page.waitForSelector('li.lesson a');
let marker = 0;
for (const [width, height] of [[1366, 768], [1920, 1080], [1100, 700]]) {
  await page.setViewportSize({ width, height });
  if (marker === 0) await page.goto(new URL(`/lessons/${slug}`, url).href);
  await page.waitForFunction(() => window.berthTerminal && (() => {
    const b = window.berthTerminal.buffer.active;
    for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString().includes('root@node1:')) return true;
    return false;
  })(), null, { timeout: 60000 });
  await page.waitForTimeout(500); // a window resize settles (fit, resize message)
  marker += 1;
  const tag = `size${marker}`;
  await page.evaluate((t) => window.berthTerminal.input(`echo ${t}=$(stty size)\r`, true), tag);
  let got;
  try {
    await page.waitForFunction((t) => {
      const b = window.berthTerminal.buffer.active;
      for (let i = 0; i < b.length; i++) if (/^\S+=\d+ \d+/.test(b.getLine(i).translateToString(true)) && b.getLine(i).translateToString(true).startsWith(t + '=')) return true;
      return false;
    }, tag, { timeout: 30000 });
    got = (await screen(page)).split('\n').find((l) => l.startsWith(tag + '=')).slice(tag.length + 1).trim();
  } catch (e) {
    console.log(`${width}x${height}: no stty answer\n${await screen(page)}`);
    failed = true;
    continue;
  }
  const xterm = await page.evaluate(() => {
    const t = window.berthTerminal;
    const dims = t._core._renderService.dimensions.css.cell;
    const box = t.element.parentElement;
    const style = getComputedStyle(box);
    const inner = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const innerH = box.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    return { rows: t.rows, cols: t.cols, fitCols: Math.floor(inner / dims.width), fitRows: Math.floor(innerH / dims.height),
      font: t.options.fontSize };
  });
  const want = `${xterm.rows} ${xterm.cols}`;
  console.log(`${width}x${height}: stty size ${got}; xterm ${want}; box fits ${xterm.fitRows}x${xterm.fitCols}; font ${xterm.font}px`);
  if (got !== want) failed = true;
  // The font follows the page's: larger on a projector.
  const wantFont = width >= 1800 ? 19 : 15;
  if (xterm.font !== wantFont) { console.log(`${width}x${height}: font ${xterm.font}px, want ${wantFont}px`); failed = true; }
  // xterm uses the box: no more than one spare column (the scrollbar's room).
  if (xterm.fitCols - xterm.cols > 2 || xterm.fitRows !== xterm.rows) { console.log(`${width}x${height}: xterm does not fill its box`); failed = true; }
  // The shell's line editor wraps a long command where xterm does: the
  // prompt's line holds exactly xterm's columns.
  const long = `#${tag}` + 'x'.repeat(xterm.cols + 10);
  await page.evaluate((d) => window.berthTerminal.input(d, true), long);
  await page.waitForTimeout(700);
  const widths = await page.evaluate((t) => {
    const b = window.berthTerminal.buffer.active;
    for (let i = b.length - 1; i >= 0; i--) {
      const line = b.getLine(i).translateToString(true);
      if (line.includes('#' + t + 'x')) return [line.length, (b.getLine(i + 1) || { translateToString: () => '' }).translateToString(true).length];
    }
    return [0, 0];
  }, tag);
  await page.evaluate(() => window.berthTerminal.input('\x03', true));
  console.log(`${width}x${height}: a long command line wraps after ${widths[0]} columns`);
  if (widths[0] !== xterm.cols) failed = true;
  await page.screenshot({ path: `${shots}/terminal-size-${width}x${height}.png` });
}
await browser.close();
if (failed) process.exit(1);
console.log(`ok: stty size equals xterm's size at ${marker} sizes`);
