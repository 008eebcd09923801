// The lab map in headless Chromium (Debian's, driven by playwright-core):
// a learner types docker commands in three lessons and the map (the Map tab
// and the lesson's lab-map figure) draws what they made. Usage:
//   node tests/browser/map.mjs URL[#networks,images,swarm] SCREENSHOT_DIR
import { chromium } from '../../web/node_modules/playwright-core/index.mjs';

// The parts to run come after a '#' in the URL (or as a third argument).
const [target, shots, third] = process.argv.slice(2);
const [url, fragment] = target.split('#');
const only = third || fragment;
const want = (part) => !only || only.split(',').includes(part);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
const page = await context.newPage();
const screen = () => page.evaluate(() => {
  if (!window.berthTerminal) return '(no terminal)';
  const b = window.berthTerminal.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n');
}).catch(() => '(no page)');
const fail = async (why) => {
  await page.screenshot({ path: `${shots}/map-failure.png` }).catch(() => {});
  console.error(why + '\n' + await screen());
  await browser.close();
  process.exit(1);
};
// The terminal's text with wrapped lines joined (a join token is long).
const termText = () => page.evaluate(() => {
  const b = window.berthTerminal && window.berthTerminal.buffer.active;
  if (!b) return '';
  let out = '';
  for (let i = 0; i < b.length; i++) {
    const l = b.getLine(i);
    out += (l.isWrapped ? '' : '\n') + l.translateToString(true);
  }
  return out;
});
const termHas = (text, timeout) => page.waitForFunction((t) => {
  const b = window.berthTerminal && window.berthTerminal.buffer.active;
  if (!b) return false;
  let out = '';
  for (let i = 0; i < b.length; i++) { const l = b.getLine(i); out += (l.isWrapped ? '' : '\n') + l.translateToString(true); }
  return out.includes(t);
}, text, { timeout: timeout || 90000 });
let n = 0;
// Types `cmd` and waits for it to finish (a marker the typed line does not show).
async function run(cmd, timeout) {
  n += 1;
  const mark = `__map${n}__`;
  await page.evaluate((c) => window.berthTerminal.input(c + '\r', true),
    `${cmd}; echo ${mark.slice(0, 4)}""${mark.slice(4)}`);
  try { await termHas(mark, timeout); } catch (e) { await fail(`"${cmd}" did not finish`); }
}
const showTab = (id) => page.click(`#${id}`);
const wait = async (selector, why, timeout) => {
  try { await page.waitForSelector(selector, { timeout: timeout || 60000, state: 'attached' }); } catch (e) { await fail(why + ` (${selector})`); }
};
const said = [];

if (want('networks')) {
  await page.goto(url + 'lessons/07-networks');
  try { await termHas('root@node1:~#'); } catch (e) { await fail('no prompt in the terminal'); }
  await run('docker network create mapnet && docker run -d --name web1 --network mapnet -p 8090:80 busybox httpd -f -p 80 && ' +
    'docker run -d --name web2 --network mapnet -v webdata:/data busybox sleep 600');
  await showTab('tab-map');
  await wait('#map-pane g.network[data-network="mapnet"] g.container[data-name="web1"].state-running', 'web1 is not drawn in mapnet');
  await wait('#map-pane g.network[data-network="mapnet"] g.container[data-name="web2"]', 'web2 is not drawn in mapnet');
  // The lesson's own figure (focus: networks) draws them too.
  await wait('figure.lab-map g.network[data-network="mapnet"] g.container[data-name="web2"]', 'the lesson figure lacks web2');
  const inNet = await page.$$eval('#map-pane g.network[data-network="mapnet"] g.container', (l) => l.map((g) => g.dataset.name).sort().join(','));
  if (inNet !== 'web1,web2') await fail('mapnet holds ' + inNet);
  // The volume is a disk on web2's card; the port a socket on web1's.
  const disk = await page.textContent('#map-pane g.container[data-name="web2"] g.disk');
  if (!disk.includes('webdata') || !disk.includes('/data')) await fail('no volume disk on web2: ' + disk);
  // The text alternative says the same.
  const text = await page.textContent('#map-pane .lab-map-text');
  if (!text.includes('web1') || !text.includes('mapnet') || !text.includes('8090→80/tcp')) await fail('text alternative: ' + text);
  // Keyboard: focus web1, Enter opens its port through the preview.
  await page.focus('#map-pane g.container[data-name="web1"]');
  const [popup] = await Promise.all([context.waitForEvent('page', { timeout: 10000 }), page.keyboard.press('Enter')]).catch(() => [null]);
  if (!popup) await fail('Enter on web1 opened nothing');
  if (!/\/s\/[0-9a-f]+\/8090\/$/.test(popup.url())) await fail('Enter opened ' + popup.url());
  await popup.close();
  // What changed glows: stop web2.
  await page.evaluate(() => window.berthTerminal.input('docker stop -t 0 web2\r', true));
  await wait('#map-pane g.container[data-name="web2"].state-exited.changed', 'stopped web2 is not highlighted', 30000);
  await page.screenshot({ path: `${shots}/map-networks-tab.png` });
  await showTab('tab-terminal');
  await page.locator('figure.lab-map').first().scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${shots}/map-networks-lesson.png` });
  said.push('networks');
}

if (want('images')) {
  await page.goto(url + 'lessons/02-images-and-layers');
  try { await termHas('root@node1:~#'); } catch (e) { await fail('no prompt in the terminal'); }
  await run('docker run --name painter2 busybox sh -c "echo hi > /hello.txt" && docker commit painter2 mapsnap:v1');
  const fig = 'figure.lab-map[data-focus="images"]';
  await wait(`${fig} g.layer.shared[data-images~="mapsnap:v1"][data-images~="busybox:latest"]`, 'no layer shared by busybox and mapsnap:v1');
  await wait(`${fig} g.layer[data-images="mapsnap:v1"]`, 'mapsnap:v1 has no layer of its own');
  const base = await page.getAttribute(`${fig} g.layer.shared[data-images~="mapsnap:v1"]`, 'data-layer');
  const copies = await page.$$eval(`${fig} g.layer[data-layer="${base}"]`, (l) => l.length);
  if (copies !== 1) await fail(`busybox's layer is drawn ${copies} times`);
  // painter2's writable layer sits on busybox.
  await wait(`${fig} g.rw-layer`, 'no writable layer drawn');
  await page.locator(fig).scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${shots}/map-images-lesson.png` });
  await showTab('tab-map');
  await page.screenshot({ path: `${shots}/map-images-tab.png` });
  await showTab('tab-terminal');
  said.push('images');
}

if (want('swarm')) {
  await page.goto(url + 'lessons/13-swarm');
  await page.waitForFunction(() => document.querySelectorAll('#tabs button').length === 3, null, { timeout: 180000 })
    .catch(() => fail('no three node tabs'));
  try { await termHas('root@node1:~#'); } catch (e) { await fail('no prompt on node1'); }
  // The lesson's setup (every node leaves any swarm) runs in the
  // background: joining before it ends would be undone.
  await page.waitForFunction(async () => {
    const r = await fetch('/api/lessons', { credentials: 'same-origin' });
    const l = (await r.json()).find((x) => x.slug === '13-swarm');
    return l && l.setup === 'done';
  }, null, { timeout: 120000, polling: 500 }).catch(() => fail('the lesson setup never finished'));
  await run('docker swarm init >/dev/null && docker swarm join-token worker | grep "docker swarm join"');
  const join = (await termText()).split('\n').map((l) => l.trim()).find((l) => l.startsWith('docker swarm join --token'));
  if (!join) await fail('no join command');
  for (const node of ['node2', 'node3']) {
    await page.click(`#tabs button:text-is("${node}")`);
    try { await termHas(`root@${node}:~#`); } catch (e) { await fail('no prompt on ' + node); }
    await page.waitForTimeout(300);
    await run(join);
    try { await termHas('This node joined a swarm as a worker.'); } catch (e) { await fail(node + ' did not join'); }
  }
  await page.click('#tabs button:text-is("node1")');
  try { await termHas('root@node1:~#'); } catch (e) { await fail('no prompt on node1 again'); }
  await page.waitForTimeout(300);
  const reg = 'registry.local:5000/bb';
  await run(`for v in v1 v2; do docker tag busybox ${reg}:$v && docker push -q ${reg}:$v; done; ` +
    `docker service create -d --name web --replicas 3 ${reg}:v1 sleep 3600`, 120000);
  const fig = 'figure.lab-map[data-focus="swarm"]';
  // Each node runs one v1 task.
  const perNode = () => page.$$eval(`${fig} g.swarm-node`, (nodes) => nodes.map((nd) => [nd.dataset.host,
    [...nd.querySelectorAll('g.task.state-running')].map((t) => t.dataset.image.split(':').pop()).sort().join('+')]));
  try {
    await page.waitForFunction((f) => {
      const tasks = [...document.querySelectorAll(f + ' g.task.state-running')];
      return tasks.length === 3 && new Set(tasks.map((t) => t.closest('g.swarm-node').dataset.host)).size === 3;
    }, fig, { timeout: 120000 });
  } catch (e) { await fail('three running tasks on three nodes never appeared: ' + JSON.stringify(await perNode())); }
  await page.evaluate((c) => window.berthTerminal.input(c + '\r', true),
    `docker service update -d --update-parallelism 1 --update-delay 4s --image ${reg}:v2 web`);
  // Watch the nodes change version one at a time.
  const seen = [];
  let mixedShot = false;
  const until = Date.now() + 120000;
  for (;;) {
    const now = await perNode();
    const key = JSON.stringify(now);
    if (!seen.length || seen[seen.length - 1].key !== key) seen.push({ key, now, at: Date.now() });
    const versions = now.map(([, v]) => v);
    if (!mixedShot && versions.some((v) => v.includes('v2')) && versions.some((v) => v.includes('v1'))) {
      await page.locator(fig).scrollIntoViewIfNeeded();
      await page.screenshot({ path: `${shots}/map-swarm-rolling.png` });
      mixedShot = true;
    }
    if (now.length === 3 && versions.every((v) => v === 'v2')) break;
    if (Date.now() > until) await fail('the update never finished: ' + JSON.stringify(seen.map((s) => s.now)));
    await page.waitForTimeout(150);
  }
  // When did each node first run v2? Three nodes, at three different times.
  const firstV2 = {};
  for (const s of seen) for (const [host, v] of s.now) if (v.includes('v2') && !(host in firstV2)) firstV2[host] = s.at;
  const times = Object.values(firstV2).sort((a, b) => a - b);
  if (times.length !== 3) await fail('v2 reached ' + JSON.stringify(firstV2));
  if (times[1] - times[0] < 2000 || times[2] - times[1] < 2000) await fail('not node by node: ' + JSON.stringify(seen.map((s) => s.now)));
  if (!mixedShot) await fail('never saw v1 and v2 side by side');
  await showTab('tab-map');
  await page.screenshot({ path: `${shots}/map-swarm-tab.png` });
  said.push('swarm (v2 reached the nodes ' + (times[1] - times[0]) + ' and ' + (times[2] - times[1]) + ' ms apart)');
}

console.log('ok: ' + said.join(', '));
await browser.close();
