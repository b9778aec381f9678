// driver.mjs: a real Chromium (Debian's /usr/bin/chromium), driven by
// playwright-core, for Go tests (testkit.StartBrowser). One JSON request a
// line on stdin, one JSON reply a line on stdout:
//
//   {"id":1,"op":"newPage","width":1280,"height":800}        -> {"id":1,"ok":true,"value":"p1"}
//   {"id":2,"op":"goto","page":"p1","url":"http://..."}
//   {"id":3,"op":"waitFor","page":"p1","selector":"css","text":"substring","timeoutMs":10000}
//   {"id":4,"op":"click","page":"p1","selector":"css"}
//   {"id":5,"op":"eval","page":"p1","expr":"(arg) => document.title","arg":null}
//   {"id":6,"op":"screenshot","page":"p1","path":"/abs/file.png","fullPage":false}
//   {"id":7,"op":"errors","page":"p1"}                        -> [{"kind":"pageerror","text":"..."}]
//   {"id":8,"op":"websockets","page":"p1"}                    -> [{"url":"ws://...","at":1700000000000}]
//
// Every page records its script errors (uncaught exceptions, console.error,
// failed requests of its own origin) from the moment it opens; "errors"
// returns them. Nothing here downloads a browser or reaches the network.
import { chromium } from 'playwright-core';
import readline from 'node:readline';

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'],
});

const pages = new Map();
let nextPage = 1;

function pageOf(req) {
  const p = pages.get(req.page);
  if (!p) throw new Error(`no page ${req.page}: open one with newPage`);
  return p;
}

const ops = {
  async newPage(req) {
    const context = await browser.newContext({
      viewport: { width: req.width || 1280, height: req.height || 800 },
      deviceScaleFactor: req.scale || 1,
      colorScheme: req.colorScheme || 'light',
    });
    const page = await context.newPage();
    const id = `p${nextPage++}`;
    const rec = { page, context, errors: [], dialogs: [], websockets: [] };
    // NB: bounded: a page reconnecting for hours keeps its newest 1000.
    page.on('websocket', (ws) => {
      rec.websockets.push({ url: ws.url(), at: Date.now() });
      if (rec.websockets.length > 1000) rec.websockets.shift();
    });
    page.on('pageerror', (err) => rec.errors.push({ kind: 'pageerror', text: String(err && err.stack || err) }));
    page.on('console', (msg) => {
      if (msg.type() === 'error') rec.errors.push({ kind: 'console', text: msg.text() });
    });
    page.on('dialog', async (d) => { rec.dialogs.push({ type: d.type(), message: d.message() }); await d.dismiss(); });
    pages.set(id, rec);
    return id;
  },
  async goto(req) {
    const { page } = pageOf(req);
    const res = await page.goto(req.url, { waitUntil: req.waitUntil || 'load', timeout: req.timeoutMs || 30000 });
    return { status: res ? res.status() : 0, url: page.url() };
  },
  async waitFor(req) {
    const { page } = pageOf(req);
    const timeout = req.timeoutMs || 10000;
    let loc = page.locator(req.selector);
    if (req.text !== undefined && req.text !== null && req.text !== '') loc = loc.filter({ hasText: req.text });
    await loc.first().waitFor({ state: req.state || 'visible', timeout });
    return await loc.count();
  },
  async click(req) {
    const { page } = pageOf(req);
    const t0 = Date.now();
    await page.locator(req.selector).first().click({ timeout: req.timeoutMs || 10000, position: req.position });
    return Date.now() - t0;
  },
  async fill(req) {
    const { page } = pageOf(req);
    await page.locator(req.selector).first().fill(String(req.value), { timeout: req.timeoutMs || 10000 });
    return true;
  },
  async press(req) {
    const { page } = pageOf(req);
    if (req.selector) await page.locator(req.selector).first().press(req.key, { timeout: req.timeoutMs || 10000 });
    else await page.keyboard.press(req.key);
    return true;
  },
  async hover(req) {
    const { page } = pageOf(req);
    await page.locator(req.selector).first().hover({ timeout: req.timeoutMs || 10000, position: req.position });
    return true;
  },
  async mouse(req) {
    // Raw mouse: {action: "move"|"down"|"up"|"wheel", x, y, dx, dy}
    const { page } = pageOf(req);
    switch (req.action) {
      case 'move': await page.mouse.move(req.x, req.y, { steps: req.steps || 1 }); break;
      case 'down': await page.mouse.down(); break;
      case 'up': await page.mouse.up(); break;
      case 'wheel': await page.mouse.wheel(req.dx || 0, req.dy || 0); break;
      default: throw new Error(`mouse action ${req.action}: want move, down, up or wheel`);
    }
    return true;
  },
  async eval(req) {
    const { page } = pageOf(req);
    // The expression is a function's source: (arg) => ... ; its value must be JSON.
    return await page.evaluate(({ src, arg }) => (0, eval)(src)(arg), { src: req.expr, arg: req.arg ?? null });
  },
  async evalFrame(req) {
    // Like eval, in the first frame whose URL or name matches req.frame (a
    // substring), or the first child frame of the element req.selector.
    const { page } = pageOf(req);
    let frame;
    if (req.selector) {
      const handle = await page.locator(req.selector).first().elementHandle({ timeout: req.timeoutMs || 10000 });
      frame = handle && await handle.contentFrame();
    } else {
      frame = page.frames().find((f) => f.url().includes(req.frame) || f.name() === req.frame);
      // NB: playwright-core 1.61 (the last that runs on Debian 12's Node 18)
      // reports no name for some frames in out-of-process iframes (srcdoc
      // frames of a cross-origin view); ask each frame its window.name.
      for (const f of frame ? [] : page.frames()) {
        const name = await f.evaluate('window.name').catch(() => '');
        if (name === req.frame) { frame = f; break; }
      }
    }
    if (!frame) throw new Error(`no frame ${req.selector || req.frame}`);
    if (req.noEval) {
      // A frame whose CSP forbids eval (an MCP Apps view): the function is
      // sent as the expression itself, which DevTools evaluates outside CSP.
      return await frame.evaluate(`(${req.expr})(${JSON.stringify(req.arg ?? null)})`);
    }
    return await frame.evaluate(({ src, arg }) => (0, eval)(src)(arg), { src: req.expr, arg: req.arg ?? null });
  },
  async screenshot(req) {
    const { page } = pageOf(req);
    const opts = { path: req.path, fullPage: !!req.fullPage };
    if (req.selector) await page.locator(req.selector).first().screenshot({ path: req.path });
    else await page.screenshot(opts);
    return req.path;
  },
  async metrics(req) {
    // Chromium's own figures (JSHeapUsedSize, Nodes, ...), after a GC when asked.
    const { page, context } = pageOf(req);
    const cdp = await context.newCDPSession(page);
    if (req.gc) await cdp.send('HeapProfiler.collectGarbage');
    await cdp.send('Performance.enable');
    const { metrics } = await cdp.send('Performance.getMetrics');
    await cdp.detach();
    return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  },
  async errors(req) { return pageOf(req).errors; },
  async dialogs(req) { return pageOf(req).dialogs; },
  async websockets(req) { return pageOf(req).websockets; },
  async url(req) { return pageOf(req).page.url(); },
  async reload(req) {
    const { page } = pageOf(req);
    await page.reload({ waitUntil: 'load' });
    return page.url();
  },
  async closePage(req) {
    const rec = pageOf(req);
    await rec.context.close();
    pages.delete(req.page);
    return true;
  },
};

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
write({ id: 0, ok: true, value: { ready: true, version: browser.version() } });
for await (const line of rl) {
  if (!line.trim()) continue;
  let req;
  try { req = JSON.parse(line); } catch (e) { write({ id: -1, ok: false, error: `bad request line: ${e.message}` }); continue; }
  if (req.op === 'quit') break;
  const op = ops[req.op];
  if (!op) { write({ id: req.id, ok: false, error: `unknown op ${req.op}` }); continue; }
  try {
    write({ id: req.id, ok: true, value: await op(req) });
  } catch (e) {
    write({ id: req.id, ok: false, error: String(e && e.message || e) });
  }
}
await browser.close();
process.exit(0);
