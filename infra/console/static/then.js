// then.js: the timeline of a kernel and the state at any past event (helper
// consolethen). What the past was is computed by the server's own replay
// (GET /ui/api/at); this view only shows it. Contract (docs/console.md):
//
//   mountThen(container, { kernelId, seq, navigate }) -> { dispose() }
//
// The chosen seq is kept in the address (#/then/<kernel>?seq=N) with
// history.replaceState, so stepping through events does not make the shell
// re-mount the view, and a reload or a shared link opens the same moment.

import { api, ApiError } from './api.js';

const AROUND_STEP_KEYS = new Set(['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown']);

// el makes an element: attributes (on* are listeners), then children
// (strings become text nodes: nothing here is ever parsed as HTML).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function fmtDuration(ms) {
  if (!ms) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

// The output renderer (outputs.js, helper consoleout), loaded when first
// needed; a page without it shows outputs as plain text.
let outputAreaClass;
async function loadOutputArea() {
  if (outputAreaClass !== undefined) return outputAreaClass;
  try {
    const mod = await import('./outputs.js');
    outputAreaClass = typeof mod.OutputArea === 'function' ? mod.OutputArea : null;
  } catch {
    outputAreaClass = null;
  }
  return outputAreaClass;
}

// plainOutputs is the fallback renderer: text only, never HTML.
function plainOutputs(box, outputs) {
  for (const o of outputs) {
    const c = o.content || {};
    let text = '';
    if (o.msg_type === 'stream') text = c.text || '';
    else if (o.msg_type === 'error') text = `${c.ename}: ${c.evalue}`;
    else if (c.data && c.data['text/plain']) text = [].concat(c.data['text/plain']).join('');
    else continue;
    box.append(el('pre', { 'data-testid': 'output', 'data-msg-type': o.msg_type, class: 'then-plain-output' }, text));
  }
}

export function mountThen(container, { kernelId, seq, navigate } = {}) {
  const kernel = String(kernelId || '');
  let disposed = false;
  let loadAbort = null;
  let areas = [];
  const areaOf = new Map(); // outputs box -> its OutputArea
  let cur = Number.isFinite(seq) && seq > 0 ? Math.floor(seq) : undefined;
  let bounds = { first: 1, last: 1, kernelFirst: 0 };
  let timeline = []; // the loaded page of the kernel's events, oldest first
  let timelineMore = false;
  let around = [];
  let debounce = 0;

  const uid = `then-${Math.random().toString(36).slice(2, 8)}`;
  const range = el('input', {
    type: 'range', id: `${uid}-range`, 'data-testid': 'timeline-seq', min: 1, max: 1, step: 1, value: 1,
    'aria-describedby': `${uid}-help`,
  });
  const seqInput = el('input', { type: 'number', id: `${uid}-seq`, 'data-testid': 'seq-input', min: 1, step: 1, inputmode: 'numeric' });
  const prevBtn = el('button', { type: 'button', 'data-testid': 'then-prev', onclick: () => step(-1) }, '◀ Previous event');
  const nextBtn = el('button', { type: 'button', 'data-testid': 'then-next', onclick: () => step(1) }, 'Next event ▶');
  const list = el('ol', { class: 'then-events', 'aria-label': 'Events of this kernel' });
  const moreBtn = el('button', { type: 'button', 'data-testid': 'timeline-more', hidden: true, onclick: () => loadTimeline(lastLoaded(), true) }, 'Load more events');
  const msg = el('p', { class: 'then-message', role: 'status', 'aria-live': 'polite' });
  const stateBox = el('section', { 'data-testid': 'then-state', class: 'then-state', 'aria-label': 'The state at the chosen event', 'aria-live': 'polite' });
  const form = el('form', {
    class: 'then-controls',
    onsubmit: (e) => {
      e.preventDefault();
      const n = Number(seqInput.value);
      if (Number.isFinite(n) && n >= 1) select(Math.floor(n));
    },
  },
  el('div', { class: 'then-slider' },
    el('label', { for: range.id }, 'Moment (event sequence)'), range,
    el('span', { id: `${uid}-help`, class: 'then-help' }, 'Arrow keys step event by event.')),
  el('div', { class: 'then-seq' },
    el('label', { for: seqInput.id }, 'Go to seq'), seqInput, el('button', { type: 'submit', 'data-testid': 'seq-go' }, 'Show')),
  el('div', { class: 'then-steps' }, prevBtn, nextBtn));
  const timelineBox = el('section', { 'data-testid': 'timeline', class: 'then-timeline', 'aria-label': 'Timeline' },
    el('h2', {}, 'Timeline'), form, msg, list, moreBtn);
  const root = el('div', { class: 'then-view', 'data-kernel-id': kernel }, timelineBox, stateBox);
  container.replaceChildren(root);
  // NB: its own styles, and the outputs' when the shell has not linked them.
  for (const css of ['then.css', 'outputs.css']) {
    if (!document.querySelector(`link[rel="stylesheet"][href$="${css}"]`)) {
      document.head.append(el('link', { rel: 'stylesheet', href: new URL(`./${css}`, import.meta.url).href }));
    }
  }

  range.addEventListener('keydown', (e) => {
    if (!AROUND_STEP_KEYS.has(e.key)) return;
    e.preventDefault(); // NB: the native step is one seq; the timeline steps one event of this kernel
    step(e.key === 'ArrowLeft' || e.key === 'ArrowDown' ? -1 : 1);
  });
  range.addEventListener('input', () => {
    seqInput.value = range.value;
    clearTimeout(debounce);
    debounce = setTimeout(() => select(Number(range.value)), 200);
  });
  range.addEventListener('change', () => { clearTimeout(debounce); select(Number(range.value)); });
  root.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || !AROUND_STEP_KEYS.has(e.key)) return;
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
    if (t && t.closest && t.closest('[data-testid="outputs"]')) return; // NB: outputs scroll with the arrows
    e.preventDefault();
    step(e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? -1 : 1);
  });

  function lastLoaded() { return timeline.length ? timeline[timeline.length - 1].seq : 0; }

  function say(text, alert = false) {
    msg.textContent = text || '';
    msg.setAttribute('role', alert ? 'alert' : 'status');
  }

  // knownSeqs: every event of the kernel the view knows, sorted.
  function knownSeqs() {
    const s = new Set();
    for (const e of timeline) s.add(e.seq);
    for (const e of around) s.add(e.seq);
    return [...s].sort((a, b) => a - b);
  }

  function step(dir) {
    if (cur === undefined) return;
    const seqs = knownSeqs();
    let to;
    if (dir > 0) to = seqs.find((s) => s > cur);
    else for (const s of seqs) if (s < cur) to = s;
    if (to === undefined) {
      say(dir > 0 ? 'No later event of this kernel.' : 'No earlier event of this kernel is retained.');
      return;
    }
    select(to);
  }

  async function loadTimeline(after, append) {
    try {
      const tl = await api(`timeline?kernel=${encodeURIComponent(kernel)}&after=${after || 0}&limit=200`);
      if (disposed) return;
      bounds = { first: tl.first, last: tl.last, kernelFirst: tl.kernel_first };
      timeline = append ? timeline.concat(tl.events) : tl.events;
      timelineMore = tl.more;
      range.min = String(bounds.kernelFirst || bounds.first);
      range.max = String(bounds.last);
      seqInput.min = String(bounds.first);
      seqInput.max = String(bounds.last);
      renderList();
    } catch (e) {
      if (!disposed) say(errText(e), true);
    }
  }

  function renderList() {
    moreBtn.hidden = !timelineMore;
    // NB: stepping with the keys from a row re-renders the rows: the
    // focus follows to the chosen one instead of falling to the page.
    const hadFocus = list.contains(document.activeElement);
    list.replaceChildren(...timeline.map((e) => {
      const current = e.seq === cur;
      const b = el('button', {
        type: 'button', class: 'then-event', onclick: () => select(e.seq),
        'aria-current': current ? 'true' : undefined,
      },
      el('span', { class: 'then-event-seq' }, `#${e.seq}`), ' ',
      el('time', { datetime: e.time }, fmtTime(e.time)), ' ',
      el('span', { class: 'then-event-summary' }, e.summary));
      return el('li', { 'data-testid': 'timeline-event', 'data-seq': e.seq, class: current ? 'current' : undefined }, b);
    }));
    const chosen = list.querySelector('li.current button');
    if (chosen) {
      chosen.scrollIntoView({ block: 'nearest' });
      if (hadFocus) chosen.focus({ preventScroll: true });
    }
  }

  function errText(e) {
    if (e instanceof ApiError && e.status === 410) return `Gone: ${e.message}`;
    if (e instanceof ApiError && e.status === 404) return `Unknown kernel: ${e.message}`;
    return (e && e.message) || String(e);
  }

  // fetchAt is the state at n. The server folds a bounded number of events
  // per request: far from any state it has, it answers 503 "being computed
  // ... retry" (or "busy ... retry") and the next request goes on from where
  // it stopped: retry (about once a second, at most a minute), saying so.
  async function fetchAt(n, signal) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await api(`at?seq=${n}&kernel=${encodeURIComponent(kernel)}`, { signal });
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 503 && /retry/.test(e.message)) || attempt >= 60) throw e;
        say(`Computing the state at #${n}…`);
        await new Promise((resolve, reject) => {
          const t = setTimeout(resolve, 1000);
          signal.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
        });
      }
    }
  }

  async function select(n) {
    if (disposed || !Number.isFinite(n)) return;
    cur = n;
    range.value = String(n);
    seqInput.value = String(n);
    range.setAttribute('aria-valuetext', `event ${n}`);
    if (window.location.hash.startsWith('#/then/')) {
      history.replaceState(history.state, '', `#/then/${encodeURIComponent(kernel)}?seq=${n}`);
    }
    renderList();
    if (loadAbort) loadAbort.abort();
    const abort = new AbortController();
    loadAbort = abort;
    stateBox.setAttribute('aria-busy', 'true');
    try {
      const at = await fetchAt(n, abort.signal);
      if (disposed || abort.signal.aborted) return;
      around = at.around || [];
      bounds.first = at.first;
      bounds.last = at.last;
      range.max = String(at.last);
      // The list shows the page holding the chosen event.
      const inPage = timeline.length && n >= timeline[0].seq && (n <= lastLoaded() || !timelineMore);
      if (!inPage && around.length) {
        await loadTimeline(around[0].seq - 1, false);
        if (disposed || abort.signal.aborted) return;
      }
      say('');
      await renderState(at);
    } catch (e) {
      if (disposed || (e && e.name === 'AbortError')) return;
      stateBox.removeAttribute('aria-busy');
      stateBox.setAttribute('data-seq', String(n));
      stateBox.setAttribute('data-error', 'true');
      stateBox.replaceChildren(el('p', { role: 'alert', class: 'then-error' }, errText(e)));
      say(errText(e), true);
    }
  }

  async function renderState(at) {
    for (const a of areas) a.dispose();
    areas = [];
    areaOf.clear();
    const OutputArea = await loadOutputArea();
    if (disposed) return;
    const k = (at.kernels || []).find((x) => x.id === kernel || x.uuid === kernel) || (at.kernels || [])[0];
    const parts = [el('h2', {}, `As of event ${at.seq}`, ' ', el('time', { datetime: at.time }, `(${fmtTime(at.time)})`))];
    if (!k) {
      parts.push(el('p', { 'data-testid': 'then-kernel', 'data-state': 'absent' }, 'The kernel did not exist yet at this event.'));
    } else {
      parts.push(el('dl', {
        class: 'then-kernel', 'data-testid': 'then-kernel', 'data-state': k.state,
        'data-execution-state': k.execution_state || '', 'data-restarts': k.restarts,
      },
      el('dt', {}, 'State'), el('dd', {}, k.state + (k.reason ? ` (${k.reason})` : '')),
      el('dt', {}, 'Activity'), el('dd', {}, k.execution_state || (k.busy ? 'busy' : 'idle')),
      el('dt', {}, 'Restarts'), el('dd', {}, String(k.restarts || 0)),
      el('dt', {}, 'Queued'), el('dd', {}, String(k.queue_depth || 0)),
      el('dt', {}, 'Running'), el('dd', {}, k.running || '—'),
      el('dt', {}, 'Kernelspec'), el('dd', {}, k.kernelspec || ''),
      el('dt', {}, 'Owner'), el('dd', {}, k.owner || '')));
    }
    const xs = at.executions || [];
    parts.push(el('h3', {}, `Executions (${xs.length}${at.more_executions ? '+' : ''})`));
    if (!xs.length) parts.push(el('p', {}, 'None yet at this event.'));
    const xsBox = el('div', { class: 'then-executions' });
    parts.push(xsBox);
    for (const x of xs) {
      const outBox = el('div', { 'data-testid': 'outputs', class: 'then-outputs' });
      const outputs = (at.outputs_of || {})[x.execution_id] || [];
      const art = el('article', {
        'data-testid': 'then-execution', 'data-execution-id': x.execution_id, 'data-status': x.status, class: `then-execution status-${x.status}`,
      },
      el('header', {},
        el('span', { class: `then-status status-${x.status}` }, x.status), ' ',
        el('span', { class: 'then-submitter' }, `${(x.submitter && x.submitter.kind) || 'agent'} ${(x.submitter && x.submitter.name) || ''}`), ' ',
        el('span', { class: 'then-duration' }, fmtDuration(x.duration_ms)), ' ',
        el('a', { href: `#/execution/${encodeURIComponent(x.execution_id)}`, onclick: (e) => { if (navigate) { e.preventDefault(); navigate(`#/execution/${encodeURIComponent(x.execution_id)}`); } } }, 'now')),
      el('pre', { class: 'then-code' }, x.code || ''),
      x.ename ? el('p', { class: 'then-ename' }, `${x.ename}: ${x.evalue || ''}`) : null,
      outBox);
      if ((at.outputs_more || {})[x.execution_id]) {
        art.append(el('button', { type: 'button', 'data-testid': 'then-more-outputs', onclick: (e) => moreOutputs(e.currentTarget, x.execution_id, at.seq, outputs, outBox) }, 'More outputs up to this event'));
      }
      xsBox.append(art);
      if (OutputArea) {
        const area = new OutputArea(outBox, {});
        areas.push(area);
        areaOf.set(outBox, area);
        area.appendMany(outputs);
      } else {
        plainOutputs(outBox, outputs);
      }
    }
    parts.push(el('h3', {}, 'Events around it'));
    parts.push(el('ol', { class: 'then-around' }, ...(at.around || []).map((e) => el('li', {
      'data-testid': 'around-event', 'data-seq': e.seq, class: e.seq === at.seq ? 'current' : undefined,
      'aria-current': e.seq === at.seq ? 'true' : undefined,
    }, el('span', { class: 'then-event-seq' }, `#${e.seq}`), ' ', el('span', {}, e.summary)))));
    stateBox.removeAttribute('data-error');
    stateBox.removeAttribute('aria-busy');
    stateBox.replaceChildren(...parts);
    stateBox.setAttribute('data-seq', String(at.seq));
  }

  async function moreOutputs(button, id, upTo, shown, outBox) {
    button.disabled = true;
    try {
      const after = shown.length ? shown[shown.length - 1].seq : 0;
      const page = await api(`at/outputs?execution=${encodeURIComponent(id)}&seq=${upTo}&after=${after}`);
      if (disposed) return;
      shown.push(...page.outputs);
      const area = areaOf.get(outBox);
      if (area) area.appendMany(page.outputs);
      else plainOutputs(outBox, page.outputs);
      button.disabled = !page.more;
      if (!page.more) button.remove();
    } catch (e) {
      button.disabled = false;
      say(errText(e), true);
    }
  }

  (async () => {
    await loadTimeline(0, false);
    if (disposed) return;
    if (cur === undefined) cur = bounds.last;
    await select(cur);
  })();

  return {
    dispose() {
      disposed = true;
      clearTimeout(debounce);
      if (loadAbort) loadAbort.abort();
      for (const a of areas) a.dispose();
      areas = [];
      container.replaceChildren();
    },
  };
}
