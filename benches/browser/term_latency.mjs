// Keystroke → glyph on screen in headless Chromium (Debian's, driven by
// playwright-core), for `berth-bench term`. Usage:
//   node term_latency.mjs berth URL KEYS      a Berth page whose terminal is window.berthTerminal
//   node term_latency.mjs bare URL KEYS       bare.html served by the bench's echo server
// Prints one JSON line: {"samples":[ms,…]}.
//
// Each key is pressed only after the previous one is on screen, after a
// random pause (so keys do not fall in step with the frame clock). The
// time runs from the keydown event's timestamp to the end of the frame that
// drew the glyph: xterm's onRender fires inside the animation frame that
// paints the row; a message posted from there is handled after that frame's
// paint, and that is when the glyph is on screen.
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

const [mode, url, keysArg] = process.argv.slice(2);
const keys = Number(keysArg || 200);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
page.on('console', (m) => errors.push('console: ' + m.text()));
const fail = async (why) => { console.error(why, errors.join('\n')); await browser.close(); process.exit(1); };

await page.goto(url);
const prompt = mode === 'bare' ? 'bare$ ' : '# ';
try {
  await page.waitForFunction((p) => {
    const t = window.berthTerminal; if (!t) return false;
    const b = t.buffer.active; return b.getLine(b.baseY + b.cursorY).translateToString(true).trimEnd().endsWith(p.trimEnd());
  }, prompt, { timeout: 60000 });
} catch (e) { await fail('no prompt in the terminal'); }
await page.evaluate(() => window.berthTerminal.focus());

await page.evaluate(() => {
  const term = window.berthTerminal;
  const L = window.berthLatency = { want: null, t0: 0, resolve: null };
  const channel = new MessageChannel();
  channel.port1.onmessage = (ev) => {
    if (L.resolve && L.want === ev.data) { const r = L.resolve; L.resolve = null; L.want = null; r(performance.now() - L.t0); }
  };
  document.addEventListener('keydown', (e) => { if (L.want && !L.t0) L.t0 = e.timeStamp; }, true);
  term.onRender(() => {
    if (!L.want || !L.t0) return;
    const b = term.buffer.active;
    if (b.getLine(b.baseY + b.cursorY).translateToString(true).endsWith(L.want)) channel.port2.postMessage(L.want);
  });
  // Armed before each key; resolves with the latency.
  window.berthArm = (want) => { window.berthResult = new Promise((resolve) => { L.want = want; L.t0 = 0; L.resolve = resolve; }); };
});

const letters = 'abcdefghijklmnopqrstuvwxyz';
const samples = [];
let typed = '';
for (let i = 0; i < keys; i++) {
  if (typed.length >= 40) {
    // Clear the line (not measured): Ctrl-U in the shell, a fresh prompt in bare mode.
    if (mode === 'bare') await page.evaluate(() => window.berthTerminal.write('\r\nbare$ '));
    else await page.keyboard.press('Control+U');
    await page.waitForFunction((p) => {
      const b = window.berthTerminal.buffer.active;
      return b.getLine(b.baseY + b.cursorY).translateToString(true).trimEnd().endsWith(p);
    }, prompt.trimEnd(), { timeout: 10000 }).catch(() => {});
    typed = '';
  }
  const ch = letters[i % letters.length];
  typed += ch;
  const want = prompt + typed;
  await new Promise((ok) => setTimeout(ok, 20 + Math.random() * 40));
  await page.evaluate((w) => window.berthArm(w.slice(-20)), want);
  await page.keyboard.press(ch);
  const ms = await Promise.race([page.evaluate(() => window.berthResult),
    new Promise((ok) => setTimeout(() => ok(null), 5000))]);
  if (ms === null) await fail('no echo for key ' + i);
  samples.push(ms);
}
console.log(JSON.stringify({ samples }));
await browser.close();
