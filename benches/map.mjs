// berth-bench map, the browser half: the latency from an engine event to
// the lab map's SVG in the page, in headless Chromium. The session already
// runs CONTAINERS containers (c0…); this pauses and unpauses them in turn
// through the node's Engine API socket and, for each, takes the event's
// time from the engine's own /events stream and the time the page drew the
// container's new state (map.js's onRender hook; the same wall clock).
// Usage: node benches/map.mjs URL TOKEN SOCKET RUNS CONTAINERS
// Prints one JSON line: {"latencies_ms": [...]}.
import http from 'node:http';
import { chromium } from '../web/node_modules/playwright-core/index.mjs';

const [url, token, socketPath, runsText, countText] = process.argv.slice(2);
const runs = Number(runsText); const count = Number(countText);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
await context.addCookies([{ name: 'berth_session', value: token, url }]);
const page = await context.newPage();
await page.goto(url + 'lessons/01-first-steps');
await page.waitForFunction(() => typeof window.berthShowMap === 'function');
await page.evaluate(() => window.berthShowMap());
await page.waitForFunction((n) => document.querySelectorAll('#map-pane g.container.state-running').length >= n, count, { timeout: 60000 });

// The engine's events, by container name and action.
const events = [];
const filters = encodeURIComponent(JSON.stringify({ type: ['container'], event: ['pause', 'unpause'] }));
http.get({ socketPath, path: '/v1.50/events?filters=' + filters }, (res) => {
  let buf = '';
  res.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (line.trim()) { const e = JSON.parse(line); events.push({ name: e.Actor.Attributes.name, action: e.Action, at: Number(BigInt(e.timeNano) / 1000n) / 1000 }); }
    }
  });
});
const post = (path) => new Promise((ok, fail) => {
  const r = http.request({ socketPath, method: 'POST', path }, (res) => { res.resume(); res.on('end', () => (res.statusCode < 300 ? ok() : fail(new Error(path + ': ' + res.statusCode)))); });
  r.on('error', fail); r.end();
});
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
await sleep(500);

const latencies = [];
const paused = new Set();
for (let i = 0; i < runs; i++) {
  const name = 'c' + (i % count);
  const action = paused.has(name) ? 'unpause' : 'pause';
  const cls = action === 'pause' ? 'state-paused' : 'state-running';
  await page.evaluate(([n, c]) => {
    window.__drawn = new Promise((ok) => {
      window.berthMap.onRender = (at) => {
        const g = document.querySelector('#map-pane g.container[data-name="' + n + '"]');
        if (g && g.classList.contains(c)) { window.berthMap.onRender = null; ok(at); }
      };
    });
  }, [name, cls]);
  const seen = events.length;
  await post('/v1.50/containers/' + name + '/' + action);
  if (action === 'pause') paused.add(name); else paused.delete(name);
  const drawn = await page.evaluate(() => window.__drawn);
  let ev;
  for (let t = 0; t < 100 && !ev; t++) { ev = events.slice(seen).find((e) => e.name === name && e.action === action); if (!ev) await sleep(20); }
  if (!ev) throw new Error('no ' + action + ' event for ' + name);
  latencies.push(drawn - ev.at);
  // A learner's commands are seconds apart; these are a little apart, so
  // each one is its own burst.
  await sleep(250);
}
console.log(JSON.stringify({ latencies_ms: latencies }));
await browser.close();
process.exit(0);
