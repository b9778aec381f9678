// mcp-app.js: the MCP Apps execution view (helper mcpapps).
//
// A host that renders MCP Apps (spec io.modelcontextprotocol/ui, 2026-01-26)
// shows this document in its own sandboxed frame beside an execute or
// get_execution call. console.AppHTML inlines it after outputs.js, in one
// module script: OutputArea is the console's renderer, the same code as the
// page's. The view talks to the host only (JSON-RPC 2.0 over postMessage):
//   view -> host  ui/initialize, then ui/notifications/initialized;
//                 ui/notifications/size-changed when its height changes
//   host -> view  ui/notifications/tool-input   (the call's arguments: code)
//                 ui/notifications/tool-result  (the CallToolResult)
//                 ui/notifications/host-context-changed, ui/resource-teardown, ping
// It fetches nothing: the outputs come in the result's
// _meta["io.github.mcp-jupyter/execution"] (raw IOPub messages, as the
// console's API gives them), or, from a host that did not advertise the
// extension, from the result's text and image content.
//
// Plotly: the host's CSP lets no script be loaded by URL, so a figure is
// drawn in a frame of its own (sandbox="allow-scripts": untrusted data never
// runs beside this view, which can ask the host to call tools) whose srcdoc
// carries plotly.js inline, taken from the document (AppHTML puts it in
// #plotly-src when the server has it). Without it, figures show their
// static fallback, and the view says why.

const APP_PROTOCOL = '2026-01-26';
const RESULT_META_KEY = 'io.github.mcp-jupyter/execution';
const PLOTLY_MIME = 'application/vnd.plotly.v1+json';
const REQUEST_TIMEOUT_MS = 10000;
// Each interactive figure parses its own copy of plotly.js: bound them.
const MAX_PLOTLY_FRAMES = 6;

const appState = {
  nextId: 1,
  pending: new Map(), // id -> {resolve, reject, timer}
  initialized: false,
  frames: new Map(), // plotly frame window -> figure
  segments: [],
  lastHeight: 0,
};

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

function post(msg) {
  window.parent.postMessage(msg, '*');
}

function request(method, params) {
  const id = appState.nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      appState.pending.delete(id);
      reject(new Error(`${method}: the host did not answer within ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    appState.pending.set(id, { resolve, reject, timer });
    post({ jsonrpc: '2.0', id, method, params });
  });
}

function notify(method, params) {
  post({ jsonrpc: '2.0', method, params: params || {} });
}

function answer(id, result) {
  post({ jsonrpc: '2.0', id, result: result || {} });
}

window.addEventListener('message', (ev) => {
  const frameFigure = appState.frames.get(ev.source);
  if (frameFigure) {
    onPlotlyFrame(ev.source, frameFigure, ev.data);
    return;
  }
  if (ev.source !== window.parent) return; // nothing else may drive the view
  const m = ev.data;
  if (!m || typeof m !== 'object' || m.jsonrpc !== '2.0') return;
  if (m.method === undefined && m.id !== undefined) {
    const p = appState.pending.get(m.id);
    if (!p) return;
    appState.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error) p.reject(new Error(m.error.message || JSON.stringify(m.error)));
    else p.resolve(m.result || {});
    return;
  }
  switch (m.method) {
    case 'ui/notifications/tool-input':
      showInput((m.params && m.params.arguments) || {});
      break;
    case 'ui/notifications/tool-result':
      showResult(m.params || {});
      break;
    case 'ui/notifications/tool-cancelled':
      setStatus('cancelled', `call cancelled${m.params && m.params.reason ? ': ' + m.params.reason : ''}`);
      break;
    case 'ui/notifications/host-context-changed':
      applyHostContext(m.params || {});
      break;
    case 'ui/resource-teardown':
      clearOutputs();
      if (m.id !== undefined) answer(m.id, {});
      break;
    case 'ping':
      if (m.id !== undefined) answer(m.id, {});
      break;
    default:
      if (m.id !== undefined) {
        post({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: `method not found: ${m.method}` } });
      }
  }
});

function applyHostContext(ctx) {
  if (ctx.theme === 'light' || ctx.theme === 'dark') {
    document.documentElement.style.colorScheme = ctx.theme;
  }
  const vars = ctx.styles && ctx.styles.variables;
  if (vars && typeof vars === 'object') {
    for (const [k, v] of Object.entries(vars)) {
      if (k.startsWith('--') && typeof v === 'string') document.documentElement.style.setProperty(k, v);
    }
  }
}

function setStatus(status, text) {
  const el = $('app-status');
  el.dataset.status = status;
  el.textContent = text || status;
}

function showInput(args) {
  const pre = $('app-code');
  if (typeof args.code === 'string' && args.code !== '') {
    pre.textContent = args.code;
    pre.hidden = false;
  }
  if ($('app-status').dataset.status === 'waiting') setStatus('waiting', 'running…');
}

function note(text) {
  const el = $('app-note');
  el.textContent = text;
  el.hidden = !text;
}

function clearOutputs() {
  for (const seg of appState.segments) {
    if (seg.area && typeof seg.area.dispose === 'function') seg.area.dispose();
  }
  appState.segments = [];
  appState.frames.clear();
  $('outputs').replaceChildren();
}

// outputsFromContent reads a result without our _meta: its text and images.
function outputsFromContent(content) {
  const outs = [];
  let seq = 0;
  for (const c of content || []) {
    seq++;
    if (c.type === 'text') {
      outs.push({ seq, msg_type: 'stream', content: { name: 'stdout', text: c.text.endsWith('\n') ? c.text : c.text + '\n' } });
    } else if (c.type === 'image' && typeof c.data === 'string') {
      outs.push({ seq, msg_type: 'display_data', content: { data: { [c.mimeType || 'image/png']: c.data }, metadata: {} } });
    }
  }
  return outs;
}

// visibleOutputs applies clear_output as a notebook does (wait: on the next
// output), since interactive figures are drawn outside OutputArea.
function visibleOutputs(outputs) {
  let list = [];
  let pendingClear = false;
  for (const o of outputs) {
    if (o.msg_type === 'clear_output') {
      if (o.content && o.content.wait) pendingClear = true;
      else { list = []; pendingClear = false; }
      continue;
    }
    if (pendingClear && o.msg_type !== 'status') { list = []; pendingClear = false; }
    list.push(o);
  }
  return list;
}

function plotlySource() {
  const el = document.getElementById('plotly-src');
  const src = el ? el.textContent : '';
  return src && src.length > 1000 ? src : '';
}

function showResult(result) {
  clearOutputs();
  const data = result._meta && result._meta[RESULT_META_KEY];
  let outputs;
  if (data && Array.isArray(data.outputs)) {
    const x = data.execution || {};
    setStatus(x.status || 'unknown', statusText(x));
    $('app-execution').textContent = [x.execution_id && `execution ${x.execution_id}`, x.kernel_id && `kernel ${x.kernel_id}`,
      x.execution_count && `In [${x.execution_count}]`].filter(Boolean).join(' · ');
    if (x.code && $('app-code').hidden) showInput({ code: x.code });
    outputs = data.outputs;
    const notes = [];
    if (data.since > 0) notes.push(`outputs after cursor ${data.since}`);
    if (x.outputs_incomplete) notes.push(x.outputs_incomplete);
    if (data.more) notes.push(`more output follows: get_execution since=${data.cursor}`);
    note(notes.join(' · '));
  } else {
    setStatus(result.isError ? 'error' : 'ok', result.isError ? 'failed' : 'result');
    outputs = outputsFromContent(result.content);
    note(result.isError ? '' : 'shown from the text of the result (the host sent no outputs)');
  }
  render(visibleOutputs(outputs));
  reportSize();
}

function statusText(x) {
  let t = x.status || 'unknown';
  if (x.ename) t += ` — ${x.ename}${x.evalue ? ': ' + x.evalue : ''}`;
  return t;
}

function newArea(container) {
  // frameURL null: HTML outputs go in srcdoc frames (a host's CSP allows
  // inline scripts, and srcdoc frames pass its frame-src 'none'; blob: and
  // URLs do not). plotlyURL '': figures reaching it show their image.
  // fullText null: the full text of a cut stream is in the server's asset
  // store, which this frame cannot reach (no token, no network).
  return new OutputArea(container, { plotlyURL: '', frameURL: null, fullText: null });
}

function render(outputs) {
  const root = $('outputs');
  const plotly = plotlySource();
  let area = null;
  let figures = 0;
  let fallbackNote = '';
  for (let o of outputs) {
    const bundle = o.content && o.content.data;
    const fig = bundle && bundle[PLOTLY_MIME];
    if ((o.msg_type === 'display_data' || o.msg_type === 'execute_result') && fig) {
      if (plotly && figures < MAX_PLOTLY_FRAMES) {
        figures++;
        const frame = plotlyFrame(plotly, figures);
        root.append(frame);
        // NB: known by its window (the same across its srcdoc load), not its
        // name: an untrusted frame could claim any name. Set before the
        // frame's scripts can run (they run after this task).
        appState.frames.set(frame.contentWindow, fig);
        appState.segments.push({ area: null });
        area = null; // later outputs go below the figure
        continue;
      }
      if (plotly) {
        fallbackNote = `only the first ${MAX_PLOTLY_FRAMES} Plotly figures are interactive; the others show their image`;
        const rest = Object.assign({}, bundle);
        delete rest[PLOTLY_MIME];
        // NB: a figure's text/html loads plotly.js from a CDN: never its fallback.
        delete rest['text/html'];
        o = Object.assign({}, o, { content: Object.assign({}, o.content, { data: rest }) });
      } else {
        // OutputArea draws its static fallback and says so.
        fallbackNote = 'Plotly figures show their static image: the server has no plotly.js (install python3-plotly or set --plotly-js)';
      }
    }
    if (!area) {
      const seg = document.createElement('div');
      root.append(seg);
      area = newArea(seg);
      appState.segments.push({ area });
    }
    area.append(o);
  }
  if (fallbackNote) {
    const el = $('app-note');
    note([el.hidden ? '' : el.textContent, fallbackNote].filter(Boolean).join(' · '));
  }
}

// The figure frame: plotly.js and a small loader inline; the figure itself
// is posted in once the frame says it is ready (never parsed as HTML).
function plotlyFrame(plotly, n) {
  const frame = document.createElement('iframe');
  frame.setAttribute('sandbox', 'allow-scripts');
  frame.setAttribute('data-testid', 'output-plotly');
  frame.setAttribute('data-msg-type', 'display_data');
  frame.className = 'plotly-frame';
  frame.name = `plotly-${n}`;
  frame.title = `Plotly figure ${n} (interactive)`;
  const loader = `
    window.addEventListener('message', function (ev) {
      if (ev.source !== window.parent || !ev.data || ev.data.kind !== 'figure') return;
      var f = ev.data.figure || {};
      var cfg = Object.assign({ responsive: true, displaylogo: false }, f.config || {});
      Plotly.newPlot('plot', f.data || [], f.layout || {}, cfg).then(function () {
        var h = Math.ceil(document.getElementById('plot').getBoundingClientRect().height);
        window.parent.postMessage({ kind: 'drawn', height: h }, '*');
      }, function (err) { window.parent.postMessage({ kind: 'failed', error: String(err) }, '*'); });
    });
    window.parent.postMessage({ kind: typeof Plotly === 'object' ? 'ready' : 'failed', error: 'plotly.js did not load' }, '*');`;
  frame.srcdoc = '<!doctype html><html><head><meta charset="utf-8"><style>html,body{margin:0;background:transparent}</style></head>' +
    '<body><div id="plot"></div><script>' + plotly + '<\/script><script>' + loader + '<\/script></body></html>';
  return frame;
}

function onPlotlyFrame(win, fig, msg) {
  if (!msg || typeof msg !== 'object') return;
  const frame = [...document.querySelectorAll('iframe[data-testid="output-plotly"]')].find((f) => f.contentWindow === win);
  if (msg.kind === 'ready') {
    win.postMessage({ kind: 'figure', figure: fig }, '*');
  } else if (msg.kind === 'drawn' && frame && Number.isFinite(msg.height) && msg.height > 0) {
    frame.style.height = `${Math.min(Math.max(msg.height, 120), 2000)}px`;
    frame.dataset.drawn = 'true';
    reportSize();
  } else if (msg.kind === 'failed' && frame) {
    frame.dataset.drawn = 'failed';
    note(`a Plotly figure could not be drawn: ${String(msg.error).slice(0, 200)}`);
  }
}

function reportSize() {
  if (!appState.initialized) return;
  const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
  const width = Math.ceil(document.documentElement.getBoundingClientRect().width);
  if (height === appState.lastHeight) return;
  appState.lastHeight = height;
  notify('ui/notifications/size-changed', { width, height });
}

async function start() {
  try {
    const res = await request('ui/initialize', {
      protocolVersion: APP_PROTOCOL,
      appInfo: { name: 'mcp-jupyter execution view', version: '1' },
      appCapabilities: { availableDisplayModes: ['inline'] },
    });
    applyHostContext(res.hostContext || {});
    appState.initialized = true;
    notify('ui/notifications/initialized', {});
    new ResizeObserver(() => reportSize()).observe(document.documentElement);
    reportSize();
  } catch (err) {
    setStatus('offline', 'not connected to a host');
    note(String(err.message || err));
  }
}

start();
