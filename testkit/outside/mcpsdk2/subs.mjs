// Issue 19's resource updates checked by the official MCP TypeScript
// clients, over Streamable HTTP against a running mcp-jupyter:
//
//   MCPJ_SDK=1|2 MCPJ_URL=http://127.0.0.1:3000/mcp MCPJ_TOKEN=… MCPJ_OTHER_TOKEN=… node subs.mjs
//
// MCPJ_SDK=1: @modelcontextprotocol/sdk 1.32.2 (../mcpsdk), MCP 2025-11-25:
// resources/subscribe and resources/unsubscribe. MCPJ_SDK=2:
// @modelcontextprotocol/client 2.4.0 (this directory), pinned to
// 2026-07-28: subscriptions/listen with resourceSubscriptions.
//
// As MCPJ_TOKEN's principal: start a kernel, run code that prints over
// ~2.5 s, follow it from the execution:// link of the "running" reply,
// count notifications/resources/updated until a read shows it finished;
// then stop following an execution (unsubscribe, or close the listen) and
// check that no update for it arrives while a later one's do. As
// MCPJ_OTHER_TOKEN's principal (no access to the kernel): subscribing and
// reading must be refused. Prints one JSON object; exits 1 naming the first
// check that failed.

import { Mismatch, check, loadSDK, text } from './lib.mjs';

const sdk = process.env.MCPJ_SDK || '2';
const timeoutMs = Number(process.env.MCPJ_CALL_TIMEOUT_MS || 180000);

const S = await loadSDK(sdk);
const result = { ok: false, sdk: S.name, node: process.version };
const clients = [];

// updates[uri] counts the updates received; waiters are woken on each.
const updates = {};
let wake = () => {};

async function connect(token) {
  const opts = sdk === '2' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {};
  const client = new S.Client({ name: `mcp-jupyter-subs-sdk${sdk}`, version: '1.0.0' }, opts);
  S.onUpdated(client, uri => {
    updates[uri] = (updates[uri] || 0) + 1;
    wake();
  });
  const transport = new S.StreamableHTTPClientTransport(new URL(process.env.MCPJ_URL),
    { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  await client.connect(transport, { timeout: timeoutMs });
  clients.push(client);
  return { client, transport };
}

function protocolVersion(c) {
  return typeof c.client.getNegotiatedProtocolVersion === 'function' ? c.client.getNegotiatedProtocolVersion() : c.transport.protocolVersion;
}

async function call(client, name, args) {
  const res = await client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs });
  check(!res.isError, `${name} answered an error`, text(res));
  return { res, text: text(res), sc: res.structuredContent || {} };
}

async function readText(client, uri) {
  const res = await client.readResource({ uri }, { timeout: timeoutMs });
  return res.contents.filter(c => typeof c.text === 'string').map(c => c.text).join('\n');
}

// until waits, woken by updates (never polling), for cond() to hold.
async function until(what, cond, ms = 90000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    const left = deadline - Date.now();
    check(left > 0, `timed out waiting for ${what}`, updates);
    await new Promise(resolve => {
      const t = setTimeout(resolve, left);
      wake = () => { clearTimeout(t); resolve(); };
    });
  }
}

// follow starts following uris: resources/subscribe (SDK 1) or one
// subscriptions/listen stream (SDK 2). It returns how to stop.
async function follow(client, uris) {
  if (sdk === '1') {
    for (const uri of uris) await client.subscribeResource({ uri }, { timeout: timeoutMs });
    return async () => { for (const uri of uris) await client.unsubscribeResource({ uri }, { timeout: timeoutMs }); };
  }
  const sub = await client.listen({ resourceSubscriptions: uris }, { timeout: timeoutMs });
  check(JSON.stringify(sub.honoredFilter.resourceSubscriptions) === JSON.stringify(uris), 'the listen honoured the URIs', sub.honoredFilter);
  return () => sub.close();
}

async function main() {
  const alice = await connect(process.env.MCPJ_TOKEN);
  result.protocol_version = protocolVersion(alice);
  const c = alice.client;
  const kernel = (await call(c, 'start_kernel', { kernelspec: 'python3' })).sc.kernel_id;
  check(kernel, 'start_kernel gave a kernel_id');

  // 1. A running execution, followed from the link its reply carries.
  const ticks = await call(c, 'execute', { kernel, timeout_s: 0.5,
    code: 'import time\nfor i in range(6):\n    print("tick", i, flush=True)\n    time.sleep(0.4)' });
  check(ticks.sc.status === 'running', 'the execute replied running', ticks.sc);
  const link = (ticks.res.content || []).find(x => x.type === 'resource_link');
  check(link && link.uri === `execution://${ticks.sc.execution_id}`, 'the running reply links execution://<id>', ticks.res.content);
  result.link = link.uri;
  const stopTicks = await follow(c, [link.uri]);
  let finalText = '';
  await until('an update after which the execution reads finished', async () => {
    if (!updates[link.uri]) return false;
    finalText = await readText(c, link.uri);
    return finalText.includes('status: ok');
  });
  check(finalText.includes('tick 5'), 'the resource holds every output', finalText);
  result.updates = updates[link.uri];
  check(result.updates >= 2, 'updates arrived while it printed, not only at its end', updates);
  await stopTicks();

  // 2. Stopped following: nothing more about it, while a later one is told.
  const late = await call(c, 'execute', { kernel, timeout_s: 0.3, code: 'import time\ntime.sleep(1.5)\nprint("late")' });
  check(late.sc.status === 'running', 'the sleeping execute replied running', late.sc);
  const lateURI = `execution://${late.sc.execution_id}`;
  const stopLate = await follow(c, [lateURI]);
  await stopLate();
  const before = updates[lateURI] || 0;
  const next = await call(c, 'execute', { kernel, timeout_s: 0.2, code: 'print("next")' });
  const nextURI = `execution://${next.sc.execution_id}`;
  const stopNext = await follow(c, [nextURI]);
  await until('the later execution\'s final update', async () =>
    (updates[nextURI] || 0) > 0 && (await readText(c, nextURI)).includes('status: ok'));
  await stopNext();
  result.unfollowed_updates = (updates[lateURI] || 0) - before;
  check(result.unfollowed_updates === 0, 'no update about an execution no longer followed', updates);
  check((await readText(c, lateURI)).includes('late'), 'the unfollowed execution did finish');

  // 3. Another principal cannot follow or read it.
  const bob = await connect(process.env.MCPJ_OTHER_TOKEN);
  let refused = '';
  try {
    await follow(bob.client, [link.uri]);
  } catch (e) {
    refused = String(e && e.message || e);
  }
  check(/unknown execution/.test(refused), 'another principal\'s subscription is refused as unknown', refused);
  result.other_subscribe = refused;
  let readRefused = '';
  try {
    await readText(bob.client, link.uri);
  } catch (e) {
    readRefused = String(e && e.message || e);
  }
  check(/unknown execution/.test(readRefused), 'another principal\'s read is refused as unknown', readRefused);

  await call(c, 'shutdown_kernel', { kernel });
  result.ok = true;
}

let code = 0;
try {
  await main();
} catch (e) {
  result.failed = e instanceof Mismatch ? e.message : `${e && e.stack || e}`;
  code = 1;
} finally {
  for (const cl of clients) await cl.close().catch(() => {});
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(code);
