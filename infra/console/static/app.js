// app.js: the console's shell, its Now views, the live feed and steering
// (helper consoleui). Views by hash: #/ kernels, #/kernel/<id> one kernel
// and its executions, #/execution/<id> one execution's outputs,
// #/then/<kernel>?seq=N the past (then.js).
//
// What the page shows comes from the server's read models (/ui/api/...);
// the live feed (live.js, /ws) moves it forward without a reload. An event
// is applied at most once (the feed drops seq <= the last it delivered;
// each record remembers the seq it reflects), and when an event's effect
// is not obvious the page re-reads the API, whose answer is the truth.
//
// NB: everything that comes from a kernel or an agent (code, labels,
// outputs) is untrusted: it reaches the DOM as text only (textContent),
// outputs through outputs.js.

import { adoptToken, token, setToken, forgetToken, api, ApiError } from './api.js';
import { LiveFeed } from './live.js';
import { OutputArea } from './outputs.js';

// Bounds: what the page keeps (a page open for a day must not grow).
const EXECUTIONS_PAGE = 50;   // executions fetched at once
const EXECUTIONS_MAX = 500;   // executions a kernel view keeps…
const EXECUTIONS_HARD_MAX = 2000; // …and at most, asking for older ones
const SEEN_MAX = 4096;        // executions whose last output seq is remembered
const PENDING_MAX = 20000;    // live outputs held while a view loads
const TOASTS_MAX = 4;
const REFRESH_DEBOUNCE_MS = 250;

const $ = (sel, root = document) => root.querySelector(sel);

// h builds an element: attributes (on*: listeners; dataset via data-*),
// children are nodes or text (never HTML).
// NB: table parts carry their roles explicitly: on phones the tables are
// shown as cards (display: block), which would otherwise drop their
// table semantics for screen readers.
const TABLE_ROLES = { table: 'table', thead: 'rowgroup', tbody: 'rowgroup', tr: 'row', th: 'columnheader', td: 'cell' };

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  if (TABLE_ROLES[tag]) el.setAttribute('role', TABLE_ROLES[tag]);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// replaceKeepingFocus replaces box's children; if the focus was among
// them (a button that just did its work and is gone now), it moves to the
// first control that replaced them, so a keyboard user is not sent back
// to the top of the page.
function replaceKeepingFocus(box, nodes) {
  const had = box.contains(document.activeElement);
  box.replaceChildren(...nodes);
  if (had) {
    const next = box.querySelector('button, a[href], input');
    if (next) next.focus();
  }
}

// ---- formatting -------------------------------------------------------

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '';
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

function timeEl(iso) {
  const text = fmtTime(iso);
  return text ? h('time', { datetime: iso, title: iso }, text) : h('span', { class: 'muted' }, '—');
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || ms < 0 || Number.isNaN(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function codePreview(code, max = 80) {
  const text = String(code || '').trim();
  const first = text.split('\n')[0];
  const more = text.includes('\n') || first.length > max;
  return (first.length > max ? first.slice(0, max) : first) + (more ? ' …' : '');
}

const DONE = new Set(['ok', 'error', 'aborted', 'interrupted', 'cancelled', 'lost']);

function submitterOf(x) {
  if (x.submitter) return x.submitter;
  const frontend = x.origin && x.origin.kind === 'frontend';
  return { kind: frontend ? 'frontend' : 'agent', name: x.by || '', client: x.origin && x.origin.client || '' };
}

function submitterEl(x) {
  const s = submitterOf(x);
  return h('span', { class: 'submitter', title: s.client ? `${s.kind} ${s.name} via ${s.client}` : `${s.kind} ${s.name}` },
    h('span', { class: `kind kind-${s.kind}` }, s.kind), ' ', s.name || '—');
}

function statusEl(status) {
  return h('span', { class: `status status-${String(status || 'unknown').replace(/[^a-z_]/g, '')}` }, String(status || 'unknown').replace('_', ' '));
}

// ---- page-wide state ---------------------------------------------------

const app = {
  me: null,
  feed: null,
  view: null,           // the open view: {onEvents(batch), dispose()}
  kernels: new Map(),   // id -> Kernel (GET /ui/api/now), all the caller may read
  kernelsSeq: 0,        // the seq the kernel list reflects
  seenOutput: new Map(),// execution id -> last IOPub seq the feed delivered (bounded, LRU)
  ticker: 0,
  tickers: new Set(),   // callbacks run each second while a view shows running executions
  troubleAt: 0,
};

function canSteer() { return !!(app.me && app.me.can_steer); }

// ---- toasts, confirm ---------------------------------------------------

function toast(message, { error = false, sticky = false, testid = 'toast' } = {}) {
  const box = $('#toasts');
  const t = h('div', { class: error ? 'toast toast-error' : 'toast', 'data-testid': testid, role: error ? 'alert' : 'status' },
    h('span', { class: 'toast-text' }, message),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => t.remove() }, '×'));
  box.append(t);
  while (box.children.length > TOASTS_MAX) box.firstElementChild.remove();
  if (!sticky) setTimeout(() => t.remove(), error ? 15000 : 6000);
}

// confirm asks in an in-page dialog; Escape or Cancel answers false.
function confirmDialog(title, text, yesLabel) {
  const dlg = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-yes').textContent = yesLabel;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true });
    dlg.showModal();
    $('#confirm-no').focus();
  });
}

// steer runs one command from a button: the button refuses a second
// press while the server answers (aria-disabled, not disabled: a disabled
// button drops the keyboard focus), the answer (or the server's refusal)
// goes to a toast.
async function steer(button, what, call) {
  if (button) {
    if (button.getAttribute('aria-disabled') === 'true') return null;
    button.setAttribute('aria-disabled', 'true');
  }
  try {
    const res = await call();
    toast(typeof what === 'function' ? what(res) : what);
    return res;
  } catch (e) {
    if (!handleAuth(e)) toast(`${typeof what === 'string' ? what.replace(/\.$/, '') : 'The command'} failed: ${e.message}`, { error: true });
    return null;
  } finally {
    if (button) button.removeAttribute('aria-disabled');
  }
}

function interruptButton(kernelId) {
  const b = h('button', { type: 'button', 'data-testid': 'interrupt', class: 'warn', 'aria-label': `Interrupt kernel ${kernelId}` }, 'Interrupt');
  b.addEventListener('click', () => steer(b, 'Interrupt sent: the running code gets a KeyboardInterrupt.',
    () => api(`kernels/${encodeURIComponent(kernelId)}/interrupt`, { method: 'POST' })));
  return b;
}

function restartButton(kernelId) {
  const b = h('button', { type: 'button', 'data-testid': 'restart', class: 'danger', 'aria-label': `Restart kernel ${kernelId}` }, 'Restart');
  b.addEventListener('click', async () => {
    if (b.getAttribute('aria-disabled') === 'true') return;
    const yes = await confirmDialog('Restart the kernel?',
      `Kernel ${kernelId} is replaced by a new process: its variables, imports and open files are lost. The restart is recorded as yours.`,
      'Restart');
    if (!yes) return;
    await steer(b, 'Kernel restarted: its variables are gone.',
      () => api(`kernels/${encodeURIComponent(kernelId)}/restart`, { method: 'POST', body: { confirm: true } }));
  });
  return b;
}

function cancelButton(x) {
  const b = h('button', { type: 'button', 'data-testid': 'cancel', 'aria-label': `Cancel execution ${x.execution_id}` }, 'Cancel');
  b.addEventListener('click', async () => {
    if (b.getAttribute('aria-disabled') === 'true') return;
    // NB: asked first: a cancel withdraws work an agent is waiting for,
    // and on an execution already sent to the kernel it aborts it there.
    const yes = await confirmDialog('Cancel the execution?',
      `Execution ${x.execution_id} is withdrawn: whoever submitted it gets "cancelled" instead of its result. If the kernel has it already, the kernel is asked to abort it.`,
      'Cancel execution');
    if (!yes) return;
    await steer(b,
      (r) => r && r.path === 'abort_requested' ? 'Cancel asked: the kernel had it already, so it is aborted.' : 'Execution withdrawn from the queue.',
      () => api(`executions/${encodeURIComponent(x.execution_id)}/cancel`, { method: 'POST' }));
  });
  return b;
}

// ---- auth --------------------------------------------------------------

// handleAuth turns a 401 into the login view; true when it did.
function handleAuth(e) {
  if (e instanceof ApiError && e.status === 401) {
    logout(e.message);
    return true;
  }
  return false;
}

function logout(message) {
  forgetToken();
  stopLive();
  showLogin(message);
}

function stopLive() {
  if (app.feed) app.feed.stop();
  app.feed = null;
  if (app.view) app.view.dispose();
  app.view = null;
  app.kernels.clear();
  app.seenOutput.clear();
  app.me = null;
  $('#live').hidden = true;
  $('#whoami').textContent = '';
}

function showLogin(message) {
  const main = $('#app');
  $('#crumbs').replaceChildren();
  const input = h('input', { id: 'login-token', type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false', 'aria-describedby': 'login-help' });
  const form = h('form', { class: 'login-form' },
    h('label', { for: 'login-token' }, 'Token'),
    input,
    h('button', { type: 'submit' }, 'Open the console'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    setToken(t);
    boot();
  });
  main.replaceChildren(h('section', { class: 'login', 'data-testid': 'login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Open the console'),
    message ? h('p', { class: 'login-error', role: 'alert' }, `The server refused the token: ${message}`) : null,
    h('p', { id: 'login-help' },
      'This console shows nothing without a token. Open it with the address ',
      h('code', {}, 'mcp-jupyter serve'), ' prints (it ends in ', h('code', {}, '/ui/?token=…'),
      '), or paste a token below. The token is kept in this tab only, and removed from the address bar.'),
    form));
  input.focus();
}

// ---- boot --------------------------------------------------------------

let booting = false;

async function boot() {
  if (booting) return;
  booting = true;
  try { await bootOnce(); } finally { booting = false; }
}

async function bootOnce() {
  $('#server').textContent = location.host;
  stopLive();
  if (!token()) { showLogin(); return; }
  let me;
  try {
    me = await api('me');
  } catch (e) {
    if (handleAuth(e)) return;
    $('#app').replaceChildren(h('section', { class: 'failed', role: 'alert' },
      h('h1', {}, 'The console cannot reach the server'), h('p', {}, e.message),
      h('button', { type: 'button', onclick: () => boot() }, 'Try again')));
    return;
  }
  app.me = me;
  $('#whoami').textContent = me.name || '';
  $('#whoami').title = `Signed in as ${me.name} (${(me.scopes || []).join(', ')})${me.can_steer ? '' : ': read only'}`;
  let since = null;
  try {
    since = await refreshKernels();
  } catch (e) {
    if (handleAuth(e)) return;
    toast(`Reading the kernels failed: ${e.message}`, { error: true });
  }
  startLive(since);
  route();
}

function startLive(since) {
  const live = $('#live');
  live.hidden = false;
  // NB: the page reflects the read models up to since already.
  live.dataset.seq = since === null ? '0' : String(since);
  const feed = new LiveFeed({
    since,
    onEvents: onEvents,
    onState: (state, detail) => showLiveState(state, detail),
    onRevoked: (reason) => logout(reason),
    onTrouble: () => checkFeed(feed),
  });
  app.feed = feed;
  // NB: a handle for people and tests to see the feed and force a resume;
  // it holds no token.
  window.__consoleLive = {
    get lastSeq() { return feed.lastSeq; },
    get state() { return feed.state; },
    get connects() { return feed.connects; },
    // repeats: events the server sent at or below the feed's last seq
    // (dropped, never applied): resume must keep it 0.
    get repeats() { return feed.repeats; },
    drop: () => feed.drop(),
    // hold: close the socket and stay offline until resume(): a page whose
    // laptop sleeps (and tests making the log move on meanwhile).
    hold: () => feed.hold(),
    resume: () => feed.resume(),
  };
  feed.start();
}

function showLiveState(state, detail) {
  const live = $('#live');
  live.dataset.state = state;
  const text = $('.live-text', live);
  if (state === 'live') text.textContent = 'Live';
  else if (state === 'connecting') text.textContent = 'Connecting…';
  else text.textContent = detail && detail.retryInMs ? `Offline, retrying in ${Math.ceil(detail.retryInMs / 1000)} s` : 'Offline';
  live.title = `${text.textContent}; the page reflects every event up to seq ${live.dataset.seq}`;
}

// checkFeed: the feed could not connect, and a browser's WebSocket cannot
// say why (a 1006 for everything): a refused token (401: show the login),
// a server that is down (keep retrying), or a since= /ws no longer serves.
// The hub answers 410 when the events after since are neither in the log
// nor in its backlog (retention removed them) and 400 when since is past
// its last event (its data was reset or restored): retrying cannot help
// either, so ask /ui/api/now (first_seq is the hub's own rule) and re-read.
async function checkFeed(feed) {
  const now = Date.now();
  if (now - app.troubleAt < 2000) return;
  app.troubleAt = now;
  const stale = () => app.feed !== feed || feed.state === 'live';
  let cur;
  try { cur = await api('now'); } catch (e) { handleAuth(e); return; }
  const last = feed.lastSeq;
  if (stale() || last === null) return;
  const first = cur.first_seq || 0;
  if (first && last + 1 < first) {
    reread(cur, `Events from ${last + 1} to ${first - 1} were removed by retention while this page was offline; the page was re-read.`);
    return;
  }
  if (last > (cur.seq || 0)) {
    // NB: the read models can lag the log by a moment: ahead twice, a
    // second apart, is a log that starts afresh.
    await new Promise((res) => setTimeout(res, 1000));
    try { cur = await api('now'); } catch (e) { handleAuth(e); return; }
    if (stale() || last <= (cur.seq || 0)) return;
    reread(cur, `The server's log was reset (it ends at event ${cur.seq || 0}; this page had seen up to ${last}); the page was re-read.`);
  }
}

// reread starts the page afresh from cur (a GET /ui/api/now): the kernel
// list, the open view and the feed, from cur's seq; notice says why.
function reread(cur, notice) {
  if (app.feed) app.feed.stop();
  app.feed = null;
  app.seenOutput.clear();
  app.kernelsSeq = 0;
  applyNow(cur);
  startLive(cur.seq || 0);
  route();
  toast(notice, { sticky: true, testid: 'live-notice' });
}

// ---- the kernel list (shared by the views) ----------------------------

async function refreshKernels() {
  return applyNow(await api('now'));
}

// applyNow takes a GET /ui/api/now into the kernel list; its seq.
function applyNow(now) {
  const seen = new Set();
  for (const k of now.kernels || []) {
    seen.add(k.id);
    const old = app.kernels.get(k.id);
    // NB: keep a later activity the feed showed than the read model's.
    if (old && old.last_activity && k.last_activity && old.last_activity > k.last_activity) k.last_activity = old.last_activity;
    app.kernels.set(k.id, k);
  }
  for (const id of [...app.kernels.keys()]) if (!seen.has(id)) app.kernels.delete(id);
  app.kernelsSeq = Math.max(app.kernelsSeq, now.seq || 0);
  return now.seq || 0;
}

// A debounced re-read, repeated while the read models lag the event that
// asked for it (bounded tries).
function refresher(read, { debounce = REFRESH_DEBOUNCE_MS } = {}) {
  let timer = 0, running = false, want = 0, tries = 0, disposed = false;
  const run = async () => {
    timer = 0;
    if (running || disposed) { if (!disposed) timer = setTimeout(run, debounce); return; }
    running = true;
    const target = want;
    try {
      const reached = await read(target);
      tries = reached === false && tries < 20 ? tries + 1 : 0;
      if (tries && !disposed && !timer) timer = setTimeout(run, 100 * tries);
    } catch (e) {
      if (!handleAuth(e) && !disposed) toast(`Refreshing failed: ${e.message}`, { error: true });
    } finally { running = false; }
  };
  return {
    ask(seq) { want = Math.max(want, seq || 0); if (!timer) timer = setTimeout(run, debounce); },
    dispose() { disposed = true; clearTimeout(timer); },
  };
}

const kernelsRefresh = refresher(async (seq) => {
  const got = await refreshKernels();
  if (app.view && app.view.kernelsChanged) app.view.kernelsChanged();
  return got >= seq;
});

// ---- events --------------------------------------------------------------

// What a kernel event makes of its kernel's state at once (the read
// model, re-read after, has the last word).
const KERNEL_STATE_OF_EVENT = {
  KernelRestarted: 'running', KernelReattached: 'running', KernelDied: 'dead', KernelLost: 'lost', KernelShutDown: 'shut down',
};

function onEvents(batch) {
  const live = $('#live');
  live.dataset.seq = String(batch[batch.length - 1].seq);
  let kernelsChanged = false, kernelsNeedRead = 0;
  for (const ev of batch) {
    const p = ev.payload || {};
    const kernelId = ev.kernel || p.kernel_id;
    if (kernelId && app.kernels.has(kernelId)) {
      app.kernels.get(kernelId).last_activity = ev.time;
      kernelsChanged = true;
    }
    if (ev.type === 'IOPubMessageReceived') {
      if (p.execution_id) {
        app.seenOutput.delete(p.execution_id);
        app.seenOutput.set(p.execution_id, ev.seq);
        if (app.seenOutput.size > SEEN_MAX) app.seenOutput.delete(app.seenOutput.keys().next().value);
      }
    } else if (ev.type.startsWith('Kernel') || ev.type.startsWith('Execution') || ev.type === 'FrontendAttached') {
      const k = kernelId && app.kernels.get(kernelId);
      const state = KERNEL_STATE_OF_EVENT[ev.type];
      if (k && state && k.state !== state) { k.state = state; kernelsChanged = true; }
      kernelsNeedRead = ev.seq; // state, queue depth, running: the read model says
    }
  }
  if (kernelsNeedRead) kernelsRefresh.ask(kernelsNeedRead);
  if (app.view) {
    if (kernelsChanged && app.view.kernelsChanged) app.view.kernelsChanged();
    app.view.onEvents(batch);
  }
}

// ---- routing ---------------------------------------------------------------

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

function route() {
  if (!app.me) return;
  if (app.view) app.view.dispose();
  app.view = null;
  const main = $('#app');
  const { parts, params } = parseRoute();
  const [kind, id] = parts;
  if (kind === 'kernel' && id) app.view = kernelView(main, id);
  else if (kind === 'execution' && id) app.view = executionView(main, id);
  else if (kind === 'then' && id) app.view = thenView(main, id, params);
  else app.view = kernelsView(main);
  const heading = main.querySelector('h1');
  if (heading && document.activeElement && !main.contains(document.activeElement)) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function crumbs(...items) {
  const nav = $('#crumbs');
  const list = h('ol');
  items.forEach((it, i) => {
    const last = i === items.length - 1;
    list.append(h('li', {}, last ? h('span', { 'aria-current': 'page' }, it.text) : h('a', { href: it.href }, it.text)));
  });
  nav.replaceChildren(list);
}

// Ticking durations of running executions (one timer for the page).
function onTick(fn) {
  app.tickers.add(fn);
  if (!app.ticker) app.ticker = setInterval(() => { for (const f of app.tickers) f(); }, 1000);
  return () => {
    app.tickers.delete(fn);
    if (!app.tickers.size) { clearInterval(app.ticker); app.ticker = 0; }
  };
}

// ---- Now: kernels -----------------------------------------------------------

function kernelLabel(k) { return k.label || k.id; }

function kernelsView(main) {
  crumbs({ text: 'Kernels' });
  document.title = 'Kernels · mcp-jupyter console';
  const tbody = h('tbody');
  const empty = h('p', { class: 'muted empty' }, 'No kernels yet: an agent\'s start_kernel shows up here as it happens.');
  const table = h('table', { class: 'cards', 'data-testid': 'kernels' },
    h('caption', { class: 'sr-only' }, 'Kernels, updated live'),
    h('thead', {}, h('tr', {},
      ...['Kernel', 'State', 'Kernelspec', 'Label', 'Notebook', 'Queue', 'Last activity', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  main.replaceChildren(h('section', { 'aria-labelledby': 'kernels-title' },
    h('h1', { id: 'kernels-title' }, 'Kernels'), table, empty));
  const rows = new Map();
  const render = () => {
    const ks = [...app.kernels.values()].sort((a, b) => String(b.started_at || '').localeCompare(String(a.started_at || '')) || a.id.localeCompare(b.id));
    empty.hidden = ks.length > 0;
    table.hidden = ks.length === 0;
    const keep = new Set();
    ks.forEach((k, i) => {
      keep.add(k.id);
      let r = rows.get(k.id);
      if (!r) {
        r = kernelRow(k);
        rows.set(k.id, r);
      }
      r.update(k);
      if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
    });
    for (const [id, r] of rows) if (!keep.has(id)) { r.tr.remove(); rows.delete(id); }
  };
  render();
  let frame = 0;
  return {
    kernelsChanged() { if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); }); },
    onEvents() {},
    dispose() { cancelAnimationFrame(frame); },
  };
}

function kernelRow(k) {
  const cell = (label) => h('td', { 'data-label': label });
  const idCell = cell('Kernel'), state = cell('State'), spec = cell('Kernelspec'), label = cell('Label'),
    notebook = cell('Notebook'), depth = cell('Queue'), activity = cell('Last activity'), actions = h('td', { class: 'actions' });
  const tr = h('tr', { 'data-testid': 'kernel-row', 'data-kernel-id': k.id }, idCell, state, spec, label, notebook, depth, activity, actions);
  idCell.append(h('a', { href: `#/kernel/${encodeURIComponent(k.id)}`, class: 'mono' }, k.id));
  let last = {};
  return {
    tr,
    update(k) {
      if (k.state !== last.state) state.replaceChildren(statusEl(k.state));
      if (k.kernelspec !== last.kernelspec) spec.textContent = k.kernelspec || '';
      if (k.label !== last.label) label.textContent = k.label || '';
      if (k.notebook !== last.notebook) notebook.textContent = k.notebook || '';
      if (k.queue_depth !== last.queue_depth || k.running !== last.running) {
        depth.replaceChildren(String(k.queue_depth || 0), k.running ? h('span', { class: 'muted' }, ' (running)') : '');
      }
      if (k.last_activity !== last.last_activity) activity.replaceChildren(timeEl(k.last_activity));
      const steerNow = canSteer() && k.state === 'running' && !!k.running;
      if (steerNow !== last.steerNow) {
        const had = actions.contains(document.activeElement);
        actions.replaceChildren(steerNow ? interruptButton(k.id) : '');
        if (had) idCell.querySelector('a').focus();
      }
      tr.dataset.state = k.state || '';
      last = { ...k, steerNow };
    },
  };
}

// ---- Now: one kernel ---------------------------------------------------------

const STATUS_OF_EVENT = {
  ExecutionQueued: () => 'queued',
  ExecutionStarted: (p) => (p.behind ? 'queued' : 'running'),
  ExecutionInputRequested: () => 'input_required',
  ExecutionInputSent: () => 'running',
  ExecutionFinished: (p) => p.status || 'ok',
  ExecutionInterrupted: () => 'interrupted',
  ExecutionCancelled: () => 'cancelled',
  ExecutionLost: () => 'lost',
};

// applyExecutionEvent moves an execution record forward by one lifecycle
// event, once (record._seq is the last seq it reflects). The read model
// is re-read after: this only spares the wait.
function applyExecutionEvent(x, ev) {
  if (ev.seq <= (x._seq || 0)) return false;
  const f = STATUS_OF_EVENT[ev.type];
  if (!f) return false;
  const p = ev.payload || {};
  x._seq = ev.seq;
  x.status = f(p);
  if (ev.type === 'ExecutionStarted' && !p.behind) { x.started_at = ev.time; x._runFrom = performance.now(); x.duration_ms = 0; }
  if (DONE.has(x.status)) {
    x.finished_at = ev.time;
    const started = Date.parse(x.started_at || '');
    if (started) x.duration_ms = Math.max(0, Date.parse(ev.time) - started);
    x._runFrom = 0;
  }
  if (ev.type === 'ExecutionFinished') { x.ename = p.ename; x.evalue = p.evalue; x.execution_count = p.execution_count; }
  return true;
}

// fromAPI merges a record the API returned into the one the page holds,
// keeping whichever reflects the later seq.
function fromAPI(old, x) {
  if (old && (old._seq || 0) > (x.last_seq || 0)) return old;
  x._seq = x.last_seq || 0;
  x._runFrom = x.status === 'running' || x.status === 'input_required' ? performance.now() : 0;
  return x;
}

function liveDuration(x) {
  if (x._runFrom) return (x.duration_ms || 0) + (performance.now() - x._runFrom);
  return x.duration_ms;
}

function kernelView(main, kernelId) {
  const enc = encodeURIComponent(kernelId);
  crumbs({ text: 'Kernels', href: '#/' }, { text: `Kernel ${kernelId}` });
  document.title = `Kernel ${kernelId} · mcp-jupyter console`;
  const title = h('h1', { id: 'kernel-title' }, `Kernel ${kernelId}`);
  const facts = h('dl', { class: 'facts' });
  const tools = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Steer this kernel' });
  const checkpoints = h('section', { class: 'checkpoints', 'aria-labelledby': 'cp-title' });
  const tbody = h('tbody');
  const table = h('table', { class: 'cards executions' },
    h('caption', { class: 'sr-only' }, 'Executions of this kernel, newest first, updated live'),
    h('thead', {}, h('tr', {}, ...['Execution', 'Status', 'Submitted by', 'Duration', 'Queued', ''].map((c) => h('th', { scope: 'col' }, c)))),
    tbody);
  const empty = h('p', { class: 'muted empty', hidden: true }, 'No executions yet.');
  const older = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Show older executions');
  const view = h('section', { 'data-testid': 'kernel-view', 'data-kernel-id': kernelId, 'aria-labelledby': 'kernel-title' },
    title, facts, tools,
    h('section', { 'aria-labelledby': 'execs-title' }, h('h2', { id: 'execs-title' }, 'Executions'), table, empty, older),
    checkpoints);
  main.replaceChildren(view);

  const execs = new Map(); // id -> record, newest first by queued_seq
  const rows = new Map();
  let more = false, disposed = false, lastToolsKey = '', cap = EXECUTIONS_MAX;

  const renderFacts = () => {
    const k = app.kernels.get(kernelId);
    if (!k) {
      facts.replaceChildren(h('dt', {}, 'State'), h('dd', {}, 'not running on this server (shut down, or never started), or not yours to see'));
      tools.replaceChildren();
      lastToolsKey = '';
      return;
    }
    if (k.label) title.textContent = `${k.label} (kernel ${kernelId})`;
    view.dataset.state = k.state || '';
    const pairs = [
      ['State', statusEl(k.state)], ['Kernelspec', k.kernelspec], ['Label', k.label || '—'], ['Notebook', k.notebook || '—'],
      ['Owner', k.owner || '—'], ['Queue depth', String(k.queue_depth || 0)],
      ['Running', k.running ? h('a', { href: `#/execution/${encodeURIComponent(k.running)}`, class: 'mono' }, k.running) : '—'],
      ['Started', timeEl(k.started_at)], ['Last activity', timeEl(k.last_activity)],
    ];
    facts.replaceChildren(...pairs.flatMap(([a, b]) => [h('dt', {}, a), h('dd', {}, b)]));
    const key = `${canSteer()}|${k.state}`;
    if (key !== lastToolsKey) {
      lastToolsKey = key;
      const then = h('a', { href: `#/then/${enc}`, class: 'button-link' }, 'Timeline (the past)');
      replaceKeepingFocus(tools, [...(canSteer() && k.state === 'running' ? [interruptButton(kernelId), restartButton(kernelId)] : []), then]);
    }
  };

  const renderRows = () => {
    const list = [...execs.values()].sort((a, b) => (b.queued_seq || 0) - (a.queued_seq || 0));
    empty.hidden = list.length > 0;
    table.hidden = list.length === 0;
    older.hidden = !more || cap >= EXECUTIONS_HARD_MAX;
    list.forEach((x, i) => {
      let r = rows.get(x.execution_id);
      if (!r) { r = executionRow(x); rows.set(x.execution_id, r); }
      r.update(x);
      if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
    });
    for (const [id, r] of rows) if (!execs.has(id)) { r.tr.remove(); rows.delete(id); }
  };

  const trim = () => {
    if (execs.size <= cap) return;
    const list = [...execs.values()].sort((a, b) => (a.queued_seq || 0) - (b.queued_seq || 0));
    for (const x of list.slice(0, execs.size - cap)) execs.delete(x.execution_id);
    more = true;
  };

  const merge = (list) => { for (const x of list) execs.set(x.execution_id, fromAPI(execs.get(x.execution_id), x)); };

  // re-read the newest page; reached when every execution the feed
  // touched reflects that seq.
  const refresh = refresher(async (seq) => {
    const r = await api(`kernels/${enc}/executions?limit=${EXECUTIONS_PAGE}`);
    if (disposed) return true;
    merge(r.executions || []);
    if (execs.size > (r.executions || []).length) more = more || r.more; else more = r.more;
    trim();
    renderRows();
    return (r.executions || []).every((x) => (x.last_seq || 0) >= Math.min(seq, (execs.get(x.execution_id) || x)._seq || 0));
  });

  older.addEventListener('click', async () => {
    cap = Math.min(cap + EXECUTIONS_PAGE, EXECUTIONS_HARD_MAX);
    const oldest = Math.min(...[...execs.values()].map((x) => x.queued_seq || Infinity));
    try {
      const r = await api(`kernels/${enc}/executions?limit=${EXECUTIONS_PAGE}&before=${oldest}`);
      merge(r.executions || []);
      more = r.more;
      trim();
      renderRows();
    } catch (e) { if (!handleAuth(e)) toast(`Reading older executions failed: ${e.message}`, { error: true }); }
  });

  (async () => {
    try {
      const r = await api(`kernels/${enc}/executions?limit=${EXECUTIONS_PAGE}`);
      if (disposed) return;
      merge(r.executions || []);
      more = r.more;
      renderRows();
    } catch (e) {
      if (!handleAuth(e)) empty.replaceChildren(`Reading the executions failed: ${e.message}`), empty.hidden = false;
    }
  })();

  renderFacts();
  mountCheckpoints(checkpoints, kernelId);
  const untick = onTick(() => { for (const r of rows.values()) r.tick(); });

  let factsFrame = 0;
  return {
    // NB: at most once a frame: a streaming kernel changes its last
    // activity with every output.
    kernelsChanged() { if (!factsFrame) factsFrame = requestAnimationFrame(() => { factsFrame = 0; if (!disposed) renderFacts(); }); },
    onEvents(batch) {
      let changed = false, need = 0;
      for (const ev of batch) {
        if (!ev.type.startsWith('Execution')) continue;
        const p = ev.payload || {};
        const id = p.execution_id;
        let x = execs.get(id);
        if (!x) {
          if ((p.kernel_id || ev.kernel) !== kernelId) continue;
          if (ev.type !== 'ExecutionQueued') {
            // NB: an execution this view has not seen queued (it was
            // queued while the list was read): the read model has it.
            need = ev.seq;
            continue;
          }
          x = { execution_id: id, kernel_id: kernelId, code: p.code, by: ev.principal, origin: p.origin, status: 'queued', queued_at: ev.time, queued_seq: ev.seq, last_seq: 0 };
          execs.set(id, x);
        }
        if (applyExecutionEvent(x, ev)) { changed = true; need = ev.seq; }
      }
      if (changed) { trim(); renderRows(); }
      if (need) refresh.ask(need);
    },
    dispose() { disposed = true; cancelAnimationFrame(factsFrame); refresh.dispose(); untick(); },
  };
}

function executionRow(x) {
  const cell = (label, cls) => h('td', { 'data-label': label, class: cls });
  const what = cell('Execution'), status = cell('Status'), who = cell('Submitted by'), dur = cell('Duration', 'num'),
    queued = cell('Queued'), actions = h('td', { class: 'actions' });
  const tr = h('tr', { 'data-testid': 'execution-row', 'data-execution-id': x.execution_id }, what, status, who, dur, queued, actions);
  what.append(h('a', { href: `#/execution/${encodeURIComponent(x.execution_id)}`, class: 'code-link' },
    h('code', {}, codePreview(x.code) || '(empty)'), h('span', { class: 'sr-only' }, ` execution ${x.execution_id}`)));
  let rec = x, last = {};
  return {
    tr,
    update(x) {
      rec = x;
      tr.dataset.status = x.status;
      if (x.status !== last.status) status.replaceChildren(statusEl(x.status));
      const s = submitterOf(x);
      if (s.name !== last.who || s.kind !== last.kind) who.replaceChildren(submitterEl(x));
      if (x.queued_at !== last.queued_at) queued.replaceChildren(timeEl(x.queued_at));
      const act = canSteer() ? x.status : '';
      if (act !== last.act) {
        const had = actions.contains(document.activeElement);
        actions.replaceChildren(act === 'queued' ? cancelButton(x) : act === 'running' || act === 'input_required' ? interruptButton(x.kernel_id) : '');
        // NB: the row's own button is gone (it did its work): its link keeps the focus.
        if (had) (actions.querySelector('button') || what.querySelector('a')).focus();
      }
      last = { status: x.status, who: s.name, kind: s.kind, queued_at: x.queued_at, act };
      this.tick();
    },
    tick() {
      const d = liveDuration(rec);
      const text = rec.status === 'queued' || d === undefined ? '' : fmtDuration(d);
      if (dur.textContent !== text) dur.textContent = text;
    },
  };
}

// Checkpoints: the kernel's saved states; save one, load one (confirmed).
function mountCheckpoints(box, kernelId) {
  const enc = encodeURIComponent(kernelId);
  const list = h('ul', { class: 'cp-list' });
  const note = h('p', { class: 'muted' });
  const parts = [h('h2', { id: 'cp-title' }, 'Checkpoints')];
  if (canSteer()) {
    const name = h('input', { id: 'cp-name', name: 'checkpoint', autocomplete: 'off', required: true, maxlength: 100, pattern: '[A-Za-z0-9_\\-][A-Za-z0-9._\\-]*', title: 'Letters, digits, - _ and . (not first)', placeholder: 'before-cleanup', 'aria-describedby': 'cp-help' });
    const save = h('button', { type: 'submit', 'data-testid': 'checkpoint-save' }, 'Save checkpoint');
    const form = h('form', { class: 'cp-form' },
      h('label', { for: 'cp-name' }, 'Name'), name, save,
      h('p', { id: 'cp-help', class: 'muted' }, 'Saves the kernel\'s variables under this name (letters, digits, - _ and ., not starting with .). Recorded as yours.'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const n = name.value.trim();
      if (!n) return;
      const r = await steer(save, (res) => `Checkpoint ${res && res.name || n} saved.`,
        () => api(`kernels/${enc}/checkpoints`, { method: 'POST', body: { name: n } }));
      if (r) { name.value = ''; load(); }
    });
    parts.push(form);
  }
  parts.push(list, note);
  box.replaceChildren(...parts);
  const load = async () => {
    try {
      const r = await api(`kernels/${enc}/checkpoints`);
      const cps = (r && r.checkpoints) || [];
      note.textContent = cps.length ? '' : 'No checkpoints saved for this kernel.';
      list.replaceChildren(...cps.slice(0, 100).map((cp) => {
        const li = h('li', {}, h('span', { class: 'mono' }, cp.name), ' ', timeEl(cp.created_at),
          cp.bytes ? h('span', { class: 'muted' }, ` ${Math.ceil(cp.bytes / 1024)} KiB`) : '');
        if (canSteer()) {
          const b = h('button', { type: 'button', 'data-testid': 'checkpoint-load', 'aria-label': `Load checkpoint ${cp.name}` }, 'Load');
          b.addEventListener('click', async () => {
            if (b.getAttribute('aria-disabled') === 'true') return;
            const yes = await confirmDialog('Load the checkpoint?',
              `Kernel ${kernelId}'s variables are replaced by those saved in ${cp.name}. What was not saved is lost. The load is recorded as yours.`, 'Load');
            if (!yes) return;
            await steer(b, `Checkpoint ${cp.name} loaded.`,
              () => api(`kernels/${enc}/checkpoints/${encodeURIComponent(cp.name)}/load`, { method: 'POST', body: { confirm: true } }));
          });
          li.append(' ', b);
        }
        return li;
      }));
    } catch (e) {
      if (!handleAuth(e)) note.textContent = `Checkpoints cannot be listed: ${e.message}`;
    }
  };
  load();
}

// ---- Now: one execution -------------------------------------------------------

function executionView(main, execId) {
  const enc = encodeURIComponent(execId);
  document.title = `Execution ${execId} · mcp-jupyter console`;
  crumbs({ text: 'Kernels', href: '#/' }, { text: `Execution ${execId}` });
  const title = h('h1', { id: 'exec-title' }, `Execution ${execId}`);
  const facts = h('dl', { class: 'facts' });
  const tools = h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Steer this execution' });
  const code = h('pre', { class: 'code' }, h('code', {}));
  const problem = h('p', { class: 'problem', hidden: true });
  const catchingUp = h('p', { class: 'note', 'data-testid': 'catching-up', role: 'status', hidden: true }, 'Catching up…');
  const outBox = h('div', { class: 'outputs', 'data-testid': 'outputs' });
  const view = h('section', { 'data-testid': 'execution-view', 'data-execution-id': execId, 'data-status': 'loading', 'aria-labelledby': 'exec-title' },
    title, facts, tools,
    h('h2', {}, 'Code'), code,
    h('h2', { id: 'outputs-title' }, 'Outputs'), problem, catchingUp, outBox);
  main.replaceChildren(view);

  let x = null, disposed = false, loading = true, pending = [], overflow = false, lastKey = '';
  const area = new OutputArea(outBox, {
    fullText: async (seq) => api(`executions/${enc}/fulltext`, { method: 'POST', body: { seq } }),
  });

  const render = () => {
    if (!x) return;
    view.dataset.status = x.status;
    if (x.kernel_id && (!view.dataset.kernelId)) {
      view.dataset.kernelId = x.kernel_id;
      crumbs({ text: 'Kernels', href: '#/' }, { text: `Kernel ${x.kernel_id}`, href: `#/kernel/${encodeURIComponent(x.kernel_id)}` }, { text: `Execution ${execId}` });
    }
    code.firstChild.textContent = x.code || '';
    const pairs = [
      ['Status', statusEl(x.status)],
      ['Kernel', h('a', { href: `#/kernel/${encodeURIComponent(x.kernel_id)}`, class: 'mono' }, x.kernel_id)],
      ['Submitted by', submitterEl(x)],
      ['Queued', timeEl(x.queued_at)], ['Started', timeEl(x.started_at)], ['Finished', timeEl(x.finished_at)],
      ['Duration', h('span', { class: 'duration' }, fmtDuration(liveDuration(x)) || '—')],
    ];
    if (x.execution_count) pairs.push(['Count', `[${x.execution_count}]`]);
    facts.replaceChildren(...pairs.flatMap(([a, b]) => [h('dt', {}, a), h('dd', {}, b)]));
    const issues = [];
    if (x.ename) issues.push(`${x.ename}: ${x.evalue || ''}`);
    if (x.reason) issues.push(x.reason);
    if (x.outputs_lost || x.outputs_lost_unknown) issues.push('Some outputs were lost before they were recorded.');
    problem.hidden = !issues.length;
    problem.textContent = issues.join(' · ');
    const key = `${canSteer()}|${x.status}`;
    if (key !== lastKey) {
      lastKey = key;
      const t = [];
      if (canSteer() && (x.status === 'running' || x.status === 'input_required')) t.push(interruptButton(x.kernel_id));
      if (canSteer() && x.status === 'queued') t.push(cancelButton(x));
      t.push(h('a', { class: 'button-link', href: `#/then/${encodeURIComponent(x.kernel_id)}?seq=${x.queued_seq || ''}` }, 'In the timeline'));
      replaceKeepingFocus(tools, t);
    }
  };

  const read = async (since) => {
    const r = await api(`executions/${enc}?since=${since}`);
    if (disposed) return r;
    x = fromAPI(x, r.execution);
    if (r.outputs && r.outputs.length) area.appendMany(r.outputs);
    render();
    return r;
  };

  // load: every output the read model holds, then what the feed delivered
  // before this view listened (seenOutput says how far that went), then
  // what arrived meanwhile. NB: the OutputArea skips seq <= its last, so
  // the order "read, then held live outputs" never repeats one.
  const load = async () => {
    try {
      let since = 0, r;
      const target = app.seenOutput.get(execId) || 0;
      do { r = await read(since); since = r.cursor || since; } while (r.more && !disposed);
      // NB: the outputs the feed delivered before this view listened are
      // not held: wait (as long as the view lives) until the read model
      // has them, or appending the held ones would leave a silent gap
      // that area.lastSeq then hides from every later re-read.
      for (let wait = 100; since < target && !disposed; wait = Math.min(wait * 2, 2000)) {
        if (wait >= 400) catchingUp.hidden = false;
        await new Promise((res) => setTimeout(res, wait));
        do { r = await read(since); since = r.cursor || since; } while (r.more && !disposed);
      }
      catchingUp.hidden = true;
      if (disposed) return;
      if (overflow) { overflow = false; pending = []; return load(); }
      loading = false;
      area.appendMany(pending);
      pending = [];
    } catch (e) {
      if (disposed || handleAuth(e)) return;
      view.dataset.status = 'unknown';
      problem.hidden = false;
      problem.textContent = `This execution cannot be shown: ${e.message}`;
      title.textContent = `Execution ${execId}`;
    }
  };
  load();

  const refresh = refresher(async (seq) => {
    const r = await read(area.lastSeq || 0);
    return (r.execution.last_seq || 0) >= seq;
  });

  const untick = onTick(() => {
    if (!x || !x._runFrom) return;
    const d = view.querySelector('.duration');
    if (d) d.textContent = fmtDuration(liveDuration(x));
  });

  return {
    onEvents(batch) {
      let changed = false, need = 0;
      for (const ev of batch) {
        const p = ev.payload || {};
        if (p.execution_id !== execId) continue;
        if (ev.type === 'IOPubMessageReceived') {
          const out = { seq: ev.seq, msg_type: p.msg_type, content: p.content };
          if (loading) {
            if (pending.length < PENDING_MAX) pending.push(out); else overflow = true;
          } else area.append(out);
        } else if (ev.type.startsWith('Execution')) {
          if (x && applyExecutionEvent(x, ev)) changed = true;
          need = ev.seq;
        }
      }
      if (changed) render();
      if (need) refresh.ask(need);
    },
    dispose() { disposed = true; refresh.dispose(); untick(); area.dispose(); },
  };
}

// ---- Then (then.js) -----------------------------------------------------------

function thenView(main, kernelId, params) {
  crumbs({ text: 'Kernels', href: '#/' }, { text: `Kernel ${kernelId}`, href: `#/kernel/${encodeURIComponent(kernelId)}` }, { text: 'Timeline' });
  document.title = `Timeline of ${kernelId} · mcp-jupyter console`;
  const box = h('section', { class: 'then', 'aria-labelledby': 'then-title' }, h('h1', { id: 'then-title' }, `Kernel ${kernelId} in the past`));
  const mount = h('div');
  box.append(mount);
  main.replaceChildren(box);
  let mounted = null, disposed = false;
  const seq = params.has('seq') && params.get('seq') !== '' ? Number(params.get('seq')) : undefined;
  // NB: loaded when asked for, so a fault in the past's view never stops
  // the present's.
  import('./then.js').then(({ mountThen }) => {
    if (disposed) return;
    mounted = mountThen(mount, {
      kernelId,
      seq: Number.isFinite(seq) ? seq : undefined,
      navigate: (to) => { location.hash = String(to).startsWith('#') ? to : `#${to}`; },
    });
  }).catch((e) => { mount.textContent = `The timeline cannot be shown: ${e.message}`; });
  return {
    onEvents() {},
    dispose() { disposed = true; if (mounted && mounted.dispose) mounted.dispose(); },
  };
}

// ---- start ------------------------------------------------------------------------

adoptToken();
window.addEventListener('hashchange', route);
boot();
