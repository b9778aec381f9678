// check.mjs BASE_URL FRAMING: JupyterLab's own client library
// (@jupyterlab/services, with the `ws` package) drives a Jupyter Server API
// the way JupyterLab does, and prints one JSON object of what it saw.
//
// FRAMING is "v1" (the v1.kernel.websocket.jupyter.org subprotocol, what
// JupyterLab 4 offers) or "legacy" (a WebSocket subclass that offers no
// subprotocol, so the server must answer in the old JSON framing).
//
// Environment:
//   MCPJ_TOKEN         the server's token (sent as `Authorization: token`, and
//                      `?token=` on the WebSocket, as JupyterLab does in Node)
//   MCPJ_USERNAME      the username the kernel connection puts in its headers
//   MCPJ_ATTACH_KERNEL an agent's kernel (UUID form) to attach to as well:
//                      its variable agent_was_here is printed (step attach)
//   MCPJ_AGENT_WAIT=1  after attaching, print the line
//                      "check.mjs: agent may run on <kernel id>" on stderr and
//                      wait until IOPub shows MCPJ_AGENT_MARKER (an agent's
//                      execution on the same kernel, run by the caller)
//   MCPJ_SHARED_NOTEBOOK, MCPJ_SHARED_HASH  a notebook an agent read (its
//                      sha256): opened with the same hash, a cell added, saved
//   MCPJ_FRONTEND_MARKER  printed by a cell run on the attached kernel (the
//                      caller then finds that execution in list_executions)
//   MCPJ_STEPS         comma-separated steps to run (default: all)
//   MCPJ_DEADLINE_MS   bound of the whole run (default 240000)
//   MCPJ_REFERENCE=1   the server is Debian's jupyter_server 1.23: skip the
//                      checks of what it predates (contents hash)
//
// Every step is bounded in time; a failed step is recorded (steps.<name>.error)
// and the script goes on with the next, so one run says everything that
// works and everything that does not. Exit status 0 when every step passed, 1
// otherwise; the JSON is printed either way.
import services from '@jupyterlab/services';
import WebSocket from 'ws';

const {
  ServerConnection,
  KernelManager,
  KernelSpecAPI,
  KernelAPI,
  SessionManager,
  SessionAPI,
  ContentsManager
} = services;

const [baseUrl, framing = 'v1'] = process.argv.slice(2);
if (!baseUrl || !['v1', 'legacy'].includes(framing)) {
  console.error('usage: node check.mjs BASE_URL v1|legacy');
  process.exit(2);
}
const token = process.env.MCPJ_TOKEN ?? '';
const username = process.env.MCPJ_USERNAME || 'outside-lab';
const only = (process.env.MCPJ_STEPS || '').split(',').filter(Boolean);
const stepTimeout = 90_000;
// The reference (Debian's jupyter_server 1.23) predates what 2.x added and
// the issue asks of us (the contents hash): not checked against it.
const reference = process.env.MCPJ_REFERENCE === '1';

// NB: stdout is the JSON result only; the library logs with console.log
// and console.debug.
console.log = console.debug = console.info = (...a) => console.error(...a);

// Every socket the library opens, to report which subprotocol the server
// chose and how each ended.
const sockets = [];
const socketLog = [];
function record(ws, url, offered) {
  sockets.push(ws);
  const entry = { kernel: url.split('/api/kernels/')[1]?.split('/')[0], offered, protocol: null, close: null };
  socketLog.push(entry);
  ws.on('open', () => { entry.protocol = ws.protocol; });
  ws.on('close', (code, reason) => { entry.close = `${code} ${reason}`; });
}
class RecordingWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    record(this, url, protocols ?? []);
  }
}
class LegacyWebSocket extends WebSocket {
  // NB: JupyterLab passes its subprotocol list; dropping it is what an
  // older client does, and forces the server into the legacy framing.
  constructor(url, _protocols) {
    super(url);
    record(this, url, []);
  }
}

const settings = ServerConnection.makeSettings({
  baseUrl,
  wsUrl: 'ws' + baseUrl.slice(4),
  token,
  appendToken: true,
  WebSocket: framing === 'legacy' ? LegacyWebSocket : RecordingWebSocket
});

const out = { ok: false, framing, base_url: baseUrl, steps: {} };
const log = (...a) => console.error('check.mjs:', ...a);

function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    })
  ]).finally(() => clearTimeout(timer));
}

async function step(name, fn) {
  if (only.length && !only.includes(name)) {
    return;
  }
  const started = Date.now();
  current = name;
  try {
    const result = (await withTimeout(Promise.resolve().then(fn), stepTimeout, name)) ?? {};
    out.steps[name] = { ok: true, ms: Date.now() - started, ...result };
  } catch (err) {
    const detail = err?.response ? ` (HTTP ${err.response.status})` : '';
    out.steps[name] = { ok: false, ms: Date.now() - started, error: `${err?.message ?? err}${detail}` };
    log(`step ${name} failed: ${err?.message ?? err}${detail}`);
  }
}

function must(cond, what) {
  if (!cond) {
    throw new Error(what);
  }
}

// Runs code on a kernel connection the way a notebook cell does and
// collects what a user would see.
async function execute(kernel, code, { allowStdin = false, onStdin } = {}) {
  const seen = { stdout: '', stderr: '', results: [], errors: [], msg_types: [] };
  const future = kernel.requestExecute({ code, allow_stdin: allowStdin, stop_on_error: false });
  future.onIOPub = msg => {
    seen.msg_types.push(msg.header.msg_type);
    const c = msg.content;
    switch (msg.header.msg_type) {
      case 'stream':
        seen[c.name] += c.text;
        break;
      case 'execute_result':
        seen.results.push(c.data['text/plain']);
        break;
      case 'error':
        seen.errors.push(c.ename);
        break;
    }
  };
  if (onStdin) {
    future.onStdin = msg => onStdin(future, msg);
  }
  const reply = await future.done;
  return {
    msg_id: future.msg.header.msg_id,
    status: reply.content.status,
    execution_count: reply.content.execution_count,
    ename: reply.content.ename,
    parent_msg_id: reply.parent_header?.msg_id,
    ...seen
  };
}

function waitStatus(kernel, want, ms) {
  return withTimeout(
    new Promise(resolve => {
      if (kernel.status === want) {
        return resolve();
      }
      const on = (_, status) => {
        if (status === want) {
          kernel.statusChanged.disconnect(on);
          resolve();
        }
      };
      kernel.statusChanged.connect(on);
    }),
    ms,
    `kernel status ${want}`
  );
}

// The whole run is bounded too: past MCPJ_DEADLINE_MS (default 240 s) it
// prints what it has, the step under way marked as cut, and exits 1.
const deadlineMs = Number(process.env.MCPJ_DEADLINE_MS || 240_000);
let current = '';
setTimeout(() => {
  out.steps[current || 'deadline'] = { ok: false, error: `the whole run passed ${deadlineMs} ms during this step` };
  finish();
}, deadlineMs).unref();

function finish() {
  // NB: of the sockets that opened (one closed while connecting has none).
  out.protocols = [...new Set(socketLog.filter(e => e.protocol !== null).map(e => e.protocol))];
  out.sockets = socketLog;
  out.ok = Object.values(out.steps).every(s => s.ok);
  out.failed = Object.entries(out.steps).filter(([, s]) => !s.ok).map(([n, s]) => `${n}: ${s.error}`).join('; ');
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
  // NB: open kernel connections keep Node alive.
  process.exit(out.ok ? 0 : 1);
}

const kernelManager = new KernelManager({ serverSettings: settings, standby: 'never' });
let kernel; // the kernel connection the steps share
const statuses = []; // every status the kernel connection reported

await step('api', async () => {
  const resp = await ServerConnection.makeRequest(baseUrl.replace(/\/?$/, '/') + 'api', {}, settings);
  must(resp.status === 200, `GET /api: ${resp.status}`);
  const body = await resp.json();
  must(typeof body.version === 'string', `GET /api: no version in ${JSON.stringify(body)}`);
  return { version: body.version };
});

await step('kernelspecs', async () => {
  const specs = await KernelSpecAPI.getSpecs(settings);
  const names = Object.keys(specs.kernelspecs);
  must(names.includes(specs.default), `default ${specs.default} not among ${names}`);
  const spec = specs.kernelspecs[specs.default];
  must(spec.language === 'python', `default spec language ${spec.language}`);
  return { default: specs.default, names, display_name: spec.display_name };
});

await step('start', async () => {
  const k = await kernelManager.startNew({ name: 'python3' }, { username });
  k.statusChanged.connect((_, s) => statuses.push(s));
  const info = await withTimeout(k.info, 60_000, `kernel_info_reply on kernel ${k.id}`);
  // NB: only a kernel that answered is used by later steps (they fail fast
  // otherwise).
  kernel = k;
  must(info.language_info?.name === 'python', `kernel_info language ${info.language_info?.name}`);
  const running = await KernelAPI.listRunning(settings);
  must(running.some(k => k.id === kernel.id), `started kernel ${kernel.id} not in GET /api/kernels`);
  must(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(kernel.id), `kernel id ${kernel.id} is not UUID-shaped`);
  return {
    kernel_id: kernel.id,
    client_id: kernel.clientId,
    username: kernel.username,
    protocol: sockets.at(-1)?.protocol ?? null,
    implementation: info.implementation,
    protocol_version: info.protocol_version
  };
});

// An agent's kernel, attached to by id (what a person does in JupyterLab's
// "Use Kernel from Other Session" / VS Code's kernel picker).
let attached;
await step('attach', async () => {
  const id = process.env.MCPJ_ATTACH_KERNEL;
  if (!id) {
    return { skipped: true };
  }
  const running = await KernelAPI.listRunning(settings);
  const model = running.find(k => k.id === id);
  must(model, `the agent's kernel ${id} is not in GET /api/kernels: ${JSON.stringify(running.map(k => k.id))}`);
  const k = kernelManager.connectTo({ model, username });
  const info = await withTimeout(k.info, 60_000, 'kernel_info_reply on the attached kernel');
  attached = k;
  must(info.language_info?.name === 'python', `kernel_info language ${info.language_info?.name}`);
  // The agent's variables are there: it is the same kernel, not a copy.
  const r = await execute(attached, 'print(repr(globals().get("agent_was_here")), flush=True)');
  must(r.status === 'ok', `execute on the attached kernel: ${JSON.stringify(r)}`);
  return { kernel_id: id, client_id: attached.clientId, stdout: r.stdout, protocol: sockets.at(-1)?.protocol ?? null };
});

await step('agent', async () => {
  if (process.env.MCPJ_AGENT_WAIT !== '1') {
    return { skipped: true };
  }
  const marker = process.env.MCPJ_AGENT_MARKER;
  must(marker, 'MCPJ_AGENT_MARKER is empty');
  const target = attached ?? kernel;
  must(target, 'no kernel to watch (step start or attach failed)');
  let text = '';
  let parent = '';
  const seen = new Promise(resolve => {
    target.iopubMessage.connect((_, msg) => {
      if (msg.header.msg_type === 'stream') {
        text += msg.content.text;
        if (text.includes(marker)) {
          parent = msg.parent_header?.msg_id ?? '';
          resolve();
        }
      }
    });
  });
  console.error(`check.mjs: agent may run on ${target.id}`);
  await withTimeout(seen, 60_000, `IOPub with the agent's marker ${marker}`);
  return { kernel_id: target.id, saw_marker: true, parent_msg_id: parent };
});

// The person runs a cell on the agent's kernel: the agent will see it in
// list_executions, attributed to this frontend.
await step('frontend_on_agent_kernel', async () => {
  const marker = process.env.MCPJ_FRONTEND_MARKER;
  if (!marker) {
    return { skipped: true };
  }
  must(attached, 'no attached kernel (step attach failed)');
  const r = await execute(attached, `print(${JSON.stringify(marker)}, flush=True)`);
  must(r.status === 'ok' && r.stdout === marker + '\n', `execute on the attached kernel: ${JSON.stringify(r)}`);
  return { kernel_id: attached.id, client_id: attached.clientId, msg_id: r.msg_id, execution_count: r.execution_count };
});

await step('execute', async () => {
  must(kernel, 'no kernel (step start failed)');
  const r = await execute(kernel, 'x = 41\nprint("hello from the frontend", flush=True)\nx + 1');
  must(r.status === 'ok', `execute_reply status ${r.status}`);
  must(r.stdout === 'hello from the frontend\n', `stdout ${JSON.stringify(r.stdout)}`);
  must(r.results.includes('42'), `execute_result ${JSON.stringify(r.results)}`);
  must(r.parent_msg_id === r.msg_id, `execute_reply's parent ${r.parent_msg_id}, sent ${r.msg_id}`);
  must(r.msg_types.includes('status'), `no status on IOPub: ${r.msg_types}`);
  return r;
});

await step('error', async () => {
  must(kernel, 'no kernel (step start failed)');
  const r = await execute(kernel, '1/0');
  must(r.status === 'error', `execute_reply status ${r.status}`);
  must(r.ename === 'ZeroDivisionError', `execute_reply ename ${r.ename}`);
  must(r.errors.includes('ZeroDivisionError'), `IOPub error ${r.errors}`);
  return { status: r.status, ename: r.ename };
});

await step('stdin', async () => {
  must(kernel, 'no kernel (step start failed)');
  const r = await execute(kernel, 'name = input("who? ")\nprint("hi", name)', {
    allowStdin: true,
    onStdin: (future, msg) => {
      must(msg.header.msg_type === 'input_request', `stdin ${msg.header.msg_type}`);
      future.sendInputReply({ status: 'ok', value: 'lab' }, msg.header);
    }
  });
  must(r.status === 'ok', `execute_reply status ${r.status}`);
  must(r.stdout.includes('hi lab'), `stdout ${JSON.stringify(r.stdout)}`);
  return { stdout: r.stdout };
});

await step('complete', async () => {
  must(kernel, 'no kernel (step start failed)');
  const reply = await kernel.requestComplete({ code: 'import o', cursor_pos: 8 });
  must(reply.content.status === 'ok', `complete_reply status ${reply.content.status}`);
  must(reply.content.matches.includes('os'), `complete_reply matches ${reply.content.matches.slice(0, 10)}`);
  return { matches: reply.content.matches.length };
});

await step('interrupt', async () => {
  must(kernel, 'no kernel (step start failed)');
  const future = kernel.requestExecute({ code: 'import time\nprint("sleeping", flush=True)\ntime.sleep(60)', stop_on_error: false });
  const sleeping = new Promise(resolve => {
    future.onIOPub = msg => {
      if (msg.header.msg_type === 'stream' && msg.content.text.includes('sleeping')) {
        resolve();
      }
    };
  });
  await withTimeout(sleeping, 30_000, 'the sleeping cell started');
  const t0 = Date.now();
  await kernel.interrupt();
  const reply = await withTimeout(future.done, 30_000, 'execute_reply after interrupt');
  must(reply.content.status === 'error' && reply.content.ename === 'KeyboardInterrupt',
    `after interrupt: status ${reply.content.status} ename ${reply.content.ename}`);
  return { status: reply.content.status, ename: reply.content.ename, ms_to_reply: Date.now() - t0 };
});

await step('restart', async () => {
  must(kernel, 'no kernel (step start failed)');
  const before = statuses.length;
  await kernel.restart();
  await waitStatus(kernel, 'idle', 60_000);
  const seen = statuses.slice(before);
  must(seen.includes('restarting'), `statuses after restart: ${seen}`);
  const r = await execute(kernel, "print('x' in globals(), flush=True)");
  must(r.status === 'ok' && r.stdout === 'False\n', `after restart x is still defined: ${JSON.stringify(r)}`);
  await execute(kernel, 'pass');
  const all = statuses.slice(before);
  // A restart this client asked for is not one the kernel did by itself:
  // JupyterLab shows "autorestarting", drops its pending requests and
  // reconnects again when the server says `restarting` after it has
  // reconnected (jupyter_server says it for its own automatic restarts only).
  must(!all.includes('autorestarting'), `JupyterLab saw its own restart as an automatic one: statuses ${all}`);
  return { statuses: all };
});

await step('sessions', async () => {
  const sessionManager = new SessionManager({ kernelManager, serverSettings: settings, standby: 'never' });
  const path = `outside-${framing}.ipynb`;
  const session = await sessionManager.startNew(
    { path, type: 'notebook', name: path, kernel: { name: 'python3' } },
    { username }
  );
  must(session.kernel, 'session has no kernel');
  const listed = await SessionAPI.listRunning(settings);
  must(listed.some(s => s.id === session.id && s.path === path), `session ${session.id} not listed: ${JSON.stringify(listed)}`);
  const found = await sessionManager.findByPath(path);
  must(found?.id === session.id, `findByPath ${path}: ${JSON.stringify(found)}`);
  // Opening the same path again gives the same session (jupyter_server's rule).
  const again = await SessionAPI.startSession({ path, type: 'notebook', name: path, kernel: { name: 'python3' } }, settings);
  must(again.id === session.id, `second POST for ${path}: session ${again.id}, first ${session.id}`);
  const r = await execute(session.kernel, 'print(6*7)');
  must(r.status === 'ok' && r.stdout === '42\n', `execute on the session's kernel: ${JSON.stringify(r)}`);
  const renamed = `renamed-${framing}.ipynb`;
  await session.setPath(renamed);
  const model = await SessionAPI.getSessionModel(session.id, settings);
  must(model.path === renamed, `after PATCH path: ${model.path}`);
  const sessionKernel = session.kernel.id;
  await session.shutdown();
  const after = await SessionAPI.listRunning(settings);
  must(!after.some(s => s.id === session.id), 'session still listed after DELETE');
  const kernels = await KernelAPI.listRunning(settings);
  must(!kernels.some(k => k.id === sessionKernel), `the session's kernel ${sessionKernel} still running after the session's DELETE`);
  sessionManager.dispose();
  return { session_id: session.id, kernel_id: sessionKernel, renamed };
});

// A notebook an agent works on (MCPJ_SHARED_NOTEBOOK, with the sha256 the
// agent's read_notebook gave, MCPJ_SHARED_HASH): the person opens it (same
// hash), adds a cell and saves it, as JupyterLab does.
await step('shared_notebook', async () => {
  const path = process.env.MCPJ_SHARED_NOTEBOOK;
  if (!path) {
    return { skipped: true };
  }
  const contents = new ContentsManager({ serverSettings: settings });
  const opened = await contents.get(path, { content: true, hash: true });
  must(opened.hash === process.env.MCPJ_SHARED_HASH,
    `the person opens ${path} with hash ${opened.hash}, the agent read ${process.env.MCPJ_SHARED_HASH}: not the same sha256`);
  const nb = opened.content;
  nb.cells.push({ id: 'person-cell', cell_type: 'code', source: 'print("the person was here")', metadata: {}, outputs: [], execution_count: null });
  await contents.save(path, { type: 'notebook', format: 'json', content: nb });
  const saved = await contents.get(path, { content: false, hash: true });
  must(saved.hash && saved.hash !== opened.hash, `hash after the save: ${saved.hash}`);
  contents.dispose();
  return { opened_hash: opened.hash, saved_hash: saved.hash };
});

await step('contents', async () => {
  const contents = new ContentsManager({ serverSettings: settings });
  const dir = await contents.newUntitled({ type: 'directory' });
  const nbPath = `${dir.path}/lab-${framing}.ipynb`;
  const nb = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: [{ id: 'c1', cell_type: 'code', source: 'print("saved from lab")', metadata: {}, outputs: [], execution_count: null }]
  };
  const saved = await contents.save(nbPath, { type: 'notebook', format: 'json', content: nb });
  must(saved.type === 'notebook' && saved.path === nbPath, `PUT: ${JSON.stringify(saved)}`);
  const got = await contents.get(nbPath, { content: true, hash: true });
  must(got.content?.cells?.[0]?.source === 'print("saved from lab")', `GET content: ${JSON.stringify(got.content)}`);
  if (!reference) {
    must(got.hash_algorithm === 'sha256' && /^[0-9a-f]{64}$/.test(got.hash ?? ''), `GET hash: ${got.hash} ${got.hash_algorithm}`);
  }
  const listing = await contents.get(dir.path, { content: true });
  must(listing.type === 'directory' && listing.content.some(m => m.path === nbPath), `listing of ${dir.path}: ${JSON.stringify(listing.content)}`);
  const checkpoint = await contents.createCheckpoint(nbPath);
  nb.cells[0].source = 'print("changed")';
  await contents.save(nbPath, { type: 'notebook', format: 'json', content: nb });
  const checkpoints = await contents.listCheckpoints(nbPath);
  must(checkpoints.some(c => c.id === checkpoint.id), `checkpoint ${checkpoint.id} not listed`);
  await contents.restoreCheckpoint(nbPath, checkpoint.id);
  const restored = await contents.get(nbPath, { content: true });
  must(restored.content.cells[0].source === 'print("saved from lab")', `after restore: ${restored.content.cells[0].source}`);
  const renamedPath = `${dir.path}/renamed-${framing}.ipynb`;
  const renamed = await contents.rename(nbPath, renamedPath);
  must(renamed.path === renamedPath, `rename: ${renamed.path}`);
  const text = await contents.save(`${dir.path}/notes.txt`, { type: 'file', format: 'text', content: 'plain text\n' });
  must(text.type === 'file', `PUT text file: ${text.type}`);
  const gotText = await contents.get(text.path, { content: true });
  must(gotText.content === 'plain text\n', `text file content ${JSON.stringify(gotText.content)}`);
  await contents.delete(renamedPath);
  await contents.delete(text.path);
  let gone = false;
  try {
    await contents.get(renamedPath);
  } catch (err) {
    gone = err?.response?.status === 404;
  }
  must(gone, `${renamedPath} still there after DELETE`);
  await contents.delete(dir.path);
  contents.dispose();
  return { dir: dir.path, hash: got.hash, checkpoint: checkpoint.id };
});

if (attached) {
  // NB: the agent's kernel stays: the person only detaches.
  attached.dispose();
}

await step('shutdown', async () => {
  must(kernel, 'no kernel (step start failed)');
  const id = kernel.id;
  await kernel.shutdown();
  const running = await KernelAPI.listRunning(settings);
  must(!running.some(k => k.id === id), `kernel ${id} still listed after shutdown`);
  let status = 0;
  try {
    await KernelAPI.getKernelModel(id, settings);
  } catch (err) {
    status = err?.response?.status ?? -1;
  }
  // NB: @jupyterlab/services turns the 404 of an unknown kernel into
  // `undefined`; any other status is an error.
  return { kernel_id: id, get_after_status: status };
});

kernelManager.dispose();
finish();
