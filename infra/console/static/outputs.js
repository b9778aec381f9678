// outputs.js: renders an execution's Jupyter outputs as JupyterLab does,
// from the raw IOPub messages the server keeps ({seq, msg_type, content}).
// Plain ES module: no dependencies, no build step, no other module needed
// (the MCP Apps view inlines this file into a self-contained page). Used by
// the Now view (app.js), the replay view (then.js) and the MCP Apps view.
//
// Everything in an output is an agent's, so untrusted:
//   - output text only ever reaches the DOM as text nodes (never innerHTML);
//   - HTML and Plotly figures run in <iframe sandbox="allow-scripts"> without
//     allow-same-origin: an opaque origin that cannot read the console's
//     token (sessionStorage), cookies or API, nor navigate the top page;
//   - SVG is shown as a data: <img> (scripts in an <img> never run).
// Stream text lives in a bounded array of lines (maxLines) of which only the
// rows in view are in the DOM, so 100,000 printed lines keep the page
// responsive and its memory bounded.

// NB: ROW_HEIGHT equals .ov-row's height in outputs.css: the virtualised
// view places rows by arithmetic, not by measuring.
const ROW_HEIGHT = 18;
const OVERSCAN = 6;          // rows rendered above and below the visible ones
const MAX_POOL = 160;        // row elements per text view, whatever the viewport
const DEFAULT_VIEW = 540;    // px: a view not laid out yet (matches max-height)
const COLLAPSE_HEAD = 200;   // a long output starts collapsed: its first lines…
const COLLAPSE_TAIL = 20;    // …and its last ones
const MIN_FRAME = 16;        // px: bounds of a frame's reported height
const MAX_FRAME = 4000;
const LARGE_HTML = 2 << 20;  // bytes: bigger HTML outputs render on request
const MAX_ROW_CHARS = 10000; // characters of one line a row shows
const LINE_KEEP = MAX_ROW_CHARS; // characters of one line kept (the rest counted)

const PLOTLY_MIME = 'application/vnd.plotly.v1+json';
// MIME_ORDER: the richest representation first, as JupyterLab ranks them.
const MIME_ORDER = [PLOTLY_MIME, 'text/html', 'image/svg+xml', 'image/png', 'image/jpeg', 'image/gif',
  'text/latex', 'text/markdown', 'application/json', 'text/plain'];
// FALLBACK_ORDER: what stands in for a Plotly figure when plotly.js cannot
// be loaded (its text/html needs plotly.js too).
const FALLBACK_ORDER = ['image/png', 'image/svg+xml', 'image/jpeg', 'image/gif', 'text/plain'];
// FRAME_BUDGET: frames one OutputArea runs at once, by kind. Each frame is
// a document of its own, and each Plotly frame gets its own copy of
// plotly.js (8.6 MB parsed): `for i in range(300): fig.show()` would
// otherwise freeze or crash the tab. Past it an output shows its static
// image (if it has one) and a button that starts its frame.
const FRAME_BUDGET = { plotly: 8, html: 64 };
const BUDGET_FALLBACK = ['image/png', 'image/svg+xml', 'image/jpeg', 'image/gif'];

// OutputArea shows one execution's outputs in container, in the order they
// arrive. append is idempotent by seq, so a resumed feed never repeats one.
export class OutputArea {
  constructor(container, { plotlyURL = '/ui/vendor/plotly.js', plotlySource = null, fullText = null, maxLines = 50000,
    maxOutputs = 2000, frameURL = '/ui/frame.html' } = {}) {
    this._opts = {
      plotlyURL, plotlySource, fullText, frameURL,
      maxLines: Math.max(1, Math.min(Number(maxLines) || 50000, 1e7)),
      maxOutputs: Math.max(1, Math.min(Number(maxOutputs) || 2000, 1e6)),
    };
    this._root = el('div', 'ov-area');
    this._dropNotice = el('p', 'ov-notice');
    this._dropNotice.dataset.testid = 'outputs-dropped';
    this._dropNotice.hidden = true;
    this._root.append(this._dropNotice);
    this._droppedOutputs = 0;      // outputs dropped from the front (beyond maxOutputs)
    container.append(this._root);
    this._items = [];              // rendered outputs, in order
    this._displays = new Map();    // display_id -> Set of items showing it
    this._frames = new Set();      // live frame records (see _frame)
    this._live = { plotly: 0, html: 0 }; // items holding a frame, by kind (FRAME_BUDGET)
    this._lastSeq = 0;
    this._clearPending = false;    // clear_output(wait=true): clear at the next output
    this._disposed = false;
    this._onMessage = (e) => this._message(e);
    window.addEventListener('message', this._onMessage);
    // Frames load when near the view: a page of figures parses plotly.js
    // only for those someone looks at.
    this._near = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => {
        for (const en of entries) if (en.isIntersecting && en.target._ovLoad) { this._near.unobserve(en.target); en.target._ovLoad(); }
      }, { rootMargin: '800px 0px' })
      : null;
    this._resize = typeof ResizeObserver === 'function'
      ? new ResizeObserver((entries) => { for (const en of entries) if (en.target._ovView) en.target._ovView.schedule(); })
      : null;
  }

  // lastSeq is the seq of the last output applied (0: none).
  get lastSeq() { return this._lastSeq; }

  // append applies one raw IOPub output. Unknown message types are ignored.
  append(output) {
    if (this._disposed || !output || typeof output !== 'object') return;
    const seq = typeof output.seq === 'number' ? output.seq : null;
    if (seq !== null) {
      if (seq <= this._lastSeq) return;
      this._lastSeq = seq;
    }
    const c = output.content && typeof output.content === 'object' ? output.content : {};
    switch (output.msg_type) {
      case 'clear_output':
        if (c.wait) this._clearPending = true;
        else { this._clearPending = false; this._clear(); }
        return;
      case 'update_display_data':
        this._updateDisplay(c);
        return;
      case 'stream':
      case 'execute_result':
      case 'display_data':
      case 'error':
        break;
      default:
        return;
    }
    if (this._clearPending) { this._clearPending = false; this._clear(); }
    switch (output.msg_type) {
      case 'stream': this._stream(c, seq); break;
      case 'error': this._error(c, seq); break;
      default: this._display(output.msg_type, c, seq); break;
    }
  }

  appendMany(outputs) {
    if (!outputs) return;
    for (const o of outputs) this.append(o);
  }

  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    window.removeEventListener('message', this._onMessage);
    if (this._resize) this._resize.disconnect();
    if (this._near) this._near.disconnect();
    for (const it of this._items) if (it.view) it.view.dispose();
    this._items = [];
    this._displays.clear();
    this._frames.clear();
    this._root.remove();
  }

  // --- outputs ---

  _newItem(msgType, seq) {
    const node = el('div', 'ov-output');
    node.dataset.testid = 'output';
    node.dataset.msgType = msgType;
    if (seq !== null) node.dataset.seq = String(seq);
    this._root.append(node);
    const item = { msgType, seq, el: node, view: null, name: '', displayId: '', framed: '' };
    this._items.push(item);
    // NB: outputs are bounded too (each is a few DOM nodes at least: an
    // execution alternating stdout and stderr makes one per chunk).
    while (this._items.length > this._opts.maxOutputs) {
      const gone = this._items.shift();
      this._drop(gone);
      const set = gone.displayId && this._displays.get(gone.displayId);
      if (set) { set.delete(gone); if (!set.size) this._displays.delete(gone.displayId); }
      this._droppedOutputs++;
      this._dropNotice.hidden = false;
      this._dropNotice.textContent = `${this._droppedOutputs.toLocaleString('en-US')} earlier outputs not kept (this view keeps the last ${this._opts.maxOutputs.toLocaleString('en-US')}).`;
    }
    return item;
  }

  _clear() {
    for (const it of this._items) this._drop(it);
    this._items = [];
    this._displays.clear();
    this._droppedOutputs = 0;
    this._dropNotice.hidden = true;
  }

  _drop(it) {
    this._reset(it);
    it.el.remove();
  }

  _stream(c, seq) {
    const name = c.name === 'stderr' ? 'stderr' : 'stdout';
    const text = typeof c.text === 'string' ? c.text : String(c.text ?? '');
    const last = this._items[this._items.length - 1];
    if (last && last.msgType === 'stream' && last.name === name && last.view) {
      last.view.write(text);
      return;
    }
    const item = this._newItem('stream', seq);
    item.name = name;
    item.el.dataset.stream = name;
    item.el.classList.add('ov-stream', 'ov-' + name);
    item.view = new TextView(item.el, {
      label: name, rowTestId: 'stream-line', maxLines: this._opts.maxLines,
      fullText: this._opts.fullText && seq !== null ? () => this._fetchFullText(seq) : null,
      resize: this._resize,
    });
    item.view.write(text);
  }

  async _fetchFullText(seq) {
    const r = await this._opts.fullText(seq);
    if (!r) throw new Error('the server has no full text for this output');
    if (typeof r === 'string') return r;
    if (typeof r.text === 'string') return r.text;
    if (typeof Response === 'function' && r instanceof Response) return r.text();
    if (!r.asset) throw new Error('the full text came back without an asset');
    // The console page's way to an asset (bearer token, never in a URL).
    const { fetchAsset } = await import('./api.js');
    const res = await fetchAsset(r.asset);
    return res.text();
  }

  _error(c, seq) {
    const item = this._newItem('error', seq);
    item.el.classList.add('ov-error');
    const pre = el('pre', 'ov-error-text');
    pre.dataset.testid = 'output-error';
    const tb = Array.isArray(c.traceback) && c.traceback.length
      ? c.traceback.map(String).join('\n')
      : `${c.ename || 'Error'}: ${c.evalue || ''}`;
    pre.append(ansiToFragment(tb));
    item.el.append(pre);
  }

  _display(msgType, c, seq) {
    const item = this._newItem(msgType, seq);
    if (msgType === 'execute_result' && c.execution_count != null) item.el.dataset.executionCount = String(c.execution_count);
    const id = c.transient && typeof c.transient.display_id === 'string' ? c.transient.display_id : '';
    if (id) {
      item.displayId = id;
      if (!this._displays.has(id)) this._displays.set(id, new Set());
      this._displays.get(id).add(item);
    }
    this._bundle(item, c.data || {}, c.metadata || {});
  }

  _updateDisplay(c) {
    const id = c.transient && c.transient.display_id;
    const targets = id && this._displays.get(id);
    if (!targets) return; // as Jupyter: an update of an unknown display shows nothing
    for (const item of targets) {
      if (!item.el.isConnected) { targets.delete(item); continue; }
      this._reset(item);
      this._bundle(item, c.data || {}, c.metadata || {});
    }
  }

  _reset(item) {
    if (item.view) { item.view.dispose(); item.view = null; }
    if (item.framed) { this._live[item.framed]--; item.framed = ''; }
    for (const f of this._frames) {
      if (!item.el.contains(f.iframe)) continue;
      this._frames.delete(f);
      if (this._near) this._near.unobserve(f.iframe);
    }
    item.el.replaceChildren();
  }

  // _bundle shows the richest representation of a MIME bundle in item.
  _bundle(item, data, metadata, order = MIME_ORDER) {
    const mime = order.find((m) => data[m] !== undefined && data[m] !== null);
    item.el.dataset.mime = mime || '';
    if (!mime) return;
    const value = data[mime];
    const md = metadata[mime] || {};
    switch (mime) {
      case PLOTLY_MIME:
        if (this._admit(item, 'plotly', data, metadata, () => this._plotly(item, value, data, metadata))) this._plotly(item, value, data, metadata);
        return;
      case 'text/html':
        if (this._admit(item, 'html', data, metadata, () => this._html(item, joinText(value)))) this._html(item, joinText(value));
        return;
      case 'image/svg+xml': this._image(item, 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(joinText(value)), data, md); return;
      case 'image/png': case 'image/jpeg': case 'image/gif':
        this._image(item, `data:${mime};base64,${joinText(value).replace(/\s+/g, '')}`, data, md); return;
      case 'application/json': this._text(item, safeJSON(value)); return;
      default: this._text(item, joinText(value)); return;
    }
  }

  _text(item, text) {
    item.view = new TextView(item.el, { label: 'result', rowTestId: 'text-line', maxLines: this._opts.maxLines, resize: this._resize });
    item.view.write(text);
  }

  _image(item, src, data, md) {
    const img = document.createElement('img');
    img.className = 'ov-image';
    img.dataset.testid = 'output-image';
    img.alt = data['text/plain'] ? joinText(data['text/plain']).slice(0, 300) : 'image output';
    if (Number(md.width) > 0) img.width = Number(md.width);
    if (Number(md.height) > 0) img.height = Number(md.height);
    img.src = src;
    item.el.append(img);
  }

  // _admit says whether item may start a frame of kind (FRAME_BUDGET) and
  // counts it; if not, item shows its static image, if any, and a button
  // that starts the frame anyway (render): someone asked for that one.
  _admit(item, kind, data, metadata, render) {
    const limit = FRAME_BUDGET[kind];
    if (this._live[kind] < limit) {
      this._live[kind]++;
      item.framed = kind;
      return true;
    }
    const what = kind === 'plotly' ? 'interactive Plotly figures' : 'HTML outputs';
    const fb = BUDGET_FALLBACK.find((m) => data[m] !== undefined && data[m] !== null);
    this._note(item, `Not started: this view already runs ${limit} ${what}, each a page of its own` +
      (fb ? '; shown as its static image.' : '.'));
    const b = button(kind === 'plotly' ? 'Show the interactive figure' : 'Show this HTML output', () => {
      this._reset(item);
      this._live[kind]++;
      item.framed = kind;
      render();
    });
    b.dataset.testid = 'render-' + kind;
    item.el.append(b);
    if (fb) this._bundle(item, data, metadata, BUDGET_FALLBACK);
    item.el.dataset.mime = kind === 'plotly' ? PLOTLY_MIME : 'text/html';
    item.el.dataset.budget = 'over';
    return false;
  }

  _note(item, text) {
    const p = el('p', 'ov-note');
    p.setAttribute('role', 'note');
    p.textContent = text;
    item.el.append(p);
  }

  _html(item, html) {
    if (html.length > LARGE_HTML) {
      if (item.framed) { this._live.html--; item.framed = ''; } // no frame until asked
      // A whole library inlined (plotly's default renderer first sends
      // plotly.js, 9 MB of script, for notebooks without its extension):
      // running it costs seconds and shows nothing; on request.
      const mb = (html.length / 1048576).toFixed(1);
      const scriptsOnly = html.replace(/<script\b[\s\S]*?<\/script\s*>/gi, '').trim() === '';
      this._note(item, scriptsOnly
        ? `An HTML output of ${mb} MB that only runs scripts (such as a library for notebooks) was not run.`
        : `A large HTML output (${mb} MB) is not shown until asked for.`);
      const b = button(scriptsOnly ? 'Run it' : 'Show it', () => {
        this._reset(item);
        this._live.html++;
        item.framed = 'html';
        this._frame(item, 'html', frameDocument(html));
      });
      b.dataset.testid = 'render-html';
      item.el.append(b);
      return;
    }
    this._frame(item, 'html', frameDocument(html));
  }

  _plotly(item, fig, data, metadata) {
    const status = el('p', 'ov-note');
    status.textContent = 'Loading the Plotly figure…';
    item.el.append(status);
    const fallback = (why) => {
      this._reset(item);
      this._note(item, `Plotly figure shown as a static fallback: ${why}.`);
      this._bundle(item, data, metadata, FALLBACK_ORDER);
    };
    // plotlySource (a function giving plotly.js's text: a page that has it
    // inline, as the MCP Apps view) wins over plotlyURL.
    const source = this._opts.plotlySource
      ? Promise.resolve().then(() => this._opts.plotlySource()).then(
        (text) => (text ? { text: String(text) } : { reason: 'no plotly.js is available here' }),
        (err) => ({ reason: `plotly.js could not be had (${err && err.message || err})` }))
      : plotlySource(this._opts.plotlyURL);
    source.then((got) => {
      if (this._disposed || !status.isConnected) return; // cleared or updated meanwhile
      if (got.reason) { fallback(got.reason); return; }
      status.remove();
      const draw = '(' + plotlyDraw.toString() + ')(' + JSON.stringify(fig === undefined ? null : fig) + ')';
      this._frame(item, 'plotly', frameDocument('<div id="ov-plot"></div>'), [got.text, draw], fallback);
    });
  }

  // _frame shows doc (a whole HTML document) in a sandboxed frame, then
  // runs scripts (sources) in it. The frame starts as frameBootstrap —
  // /ui/frame.html (served with its own CSP: the page's forbids inline
  // scripts, and srcdoc, blob: and data: documents would inherit it) or,
  // with frameURL null (a host whose CSP allows inline scripts, as MCP
  // Apps), a srcdoc — and is sent the document by postMessage: it loads
  // nothing itself (a sandboxed document's requests carry Origin: null,
  // which the server refuses).
  _frame(item, kind, doc, scripts, onFail) {
    const f = document.createElement('iframe');
    f.setAttribute('sandbox', 'allow-scripts');
    f.setAttribute('referrerpolicy', 'no-referrer');
    f.className = 'ov-frame ov-frame-' + kind;
    f.dataset.testid = kind === 'plotly' ? 'output-plotly' : 'output-html';
    f.title = kind === 'plotly' ? 'Plotly figure' : 'HTML output';
    const rec = { iframe: f, doc, scripts: scripts || [], kind, sent: false, onFail: onFail || null };
    this._frames.add(rec);
    f._ovLoad = () => {
      f._ovLoad = null;
      if (this._opts.frameURL) f.src = this._opts.frameURL;
      else f.srcdoc = '<!doctype html><html><head><meta charset="utf-8"><script>(' + frameBootstrap.toString() + ')()</script></head></html>';
    };
    item.el.append(f);
    if (this._near) this._near.observe(f);
    else f._ovLoad();
  }

  // _message takes messages from our frames only (event.source is the
  // frame's window); anything else on the page's message bus is ignored.
  _message(e) {
    let rec = null;
    for (const r of this._frames) if (r.iframe.contentWindow === e.source && e.source) { rec = r; break; }
    if (!rec) return;
    const d = e.data;
    if (!d || typeof d !== 'object') return;
    switch (d.type) {
      case 'ov-ready':
        if (!rec.sent) {
          rec.sent = true;
          e.source.postMessage({ type: 'ov-write', html: rec.doc, scripts: rec.scripts }, '*');
          rec.doc = ''; rec.scripts = []; // sent: do not keep a copy
        }
        break;
      case 'ov-height': {
        const h = Number(d.height);
        if (Number.isFinite(h)) rec.iframe.style.height = Math.min(MAX_FRAME, Math.max(MIN_FRAME, Math.ceil(h))) + 'px';
        break;
      }
      case 'ov-plotly-drawn':
        rec.iframe.dataset.drawn = 'true';
        break;
      case 'ov-plotly-failed':
        if (rec.onFail) { const f = rec.onFail; rec.onFail = null; this._frames.delete(rec); f(String(d.reason || 'plotly.js could not draw it').slice(0, 300)); }
        break;
    }
  }
}

// TextView: text as fixed-height rows in a scroller, only those in view in
// the DOM (recycled); lines kept in a bounded array. Handles \r (a progress
// bar rewriting its line), \b, and ANSI colours carried across lines.
class TextView {
  constructor(parent, { label, rowTestId, maxLines, fullText = null, resize = null }) {
    this._max = maxLines;
    this._rowTestId = rowTestId;
    this._fullText = fullText;
    this._lines = [];       // _lines[_head..] are kept; the last may be open
    this._head = 0;
    this._dropped = 0;      // lines dropped from the front (beyond maxLines)
    this._open = false;     // the last line has no newline yet
    this._cr = false;       // a \r came: the next text rewrites the open line
    this._ed = null;        // the open line while write edits it (see _edit)
    this._lineStart = '';   // SGR prefix of the open line (its colour at start)
    this._sgr = null;       // ANSI state after the last closed line
    this._collapsed = true;
    this._follow = true;    // stick to the last line as text arrives
    this._raf = 0;
    this._pool = [];
    this._disposed = false;
    this._resizeObs = resize;

    this.el = el('div', 'ov-text');
    this._notice = el('div', 'ov-notice');
    this._notice.hidden = true;
    this._scroller = el('div', 'ov-scroller');
    this._scroller.tabIndex = 0;
    this._scroller.setAttribute('role', 'region');
    this._scroller.setAttribute('aria-label', label + ' text');
    this._scroller._ovView = this;
    this._spacer = el('div', 'ov-spacer');
    this._marker = el('div', 'ov-row ov-marker');
    this._marker.hidden = true;
    this._scroller.append(this._spacer, this._marker);
    this._controls = el('div', 'ov-controls');
    this._toggle = button('', () => this.setCollapsed(!this._collapsed));
    this._toggle.dataset.testid = 'show-all';
    this._toggle.hidden = true;
    this._controls.append(this._toggle);
    this.el.append(this._notice, this._scroller, this._controls);
    parent.append(this.el);
    this._scroller.addEventListener('scroll', () => {
      const s = this._scroller;
      this._follow = s.scrollTop + s.clientHeight >= s.scrollHeight - ROW_HEIGHT;
      this.schedule();
    }, { passive: true });
    if (resize) resize.observe(this._scroller);
  }

  get lineCount() { return this._dropped + this._lines.length - this._head; }

  write(text) {
    if (!text) return;
    const re = /\r\n|[\n\r\b]/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) this._put(text.slice(last, m.index));
      const t = m[0];
      if (t === '\r') this._cr = true;
      else if (t === '\b') this._backspace();
      else this._newline();
      last = re.lastIndex;
    }
    if (last < text.length) this._put(text.slice(last));
    this._commit();
    this._trim();
    this.schedule();
  }

  // replaceAll shows text (the full text) instead of what is kept: no bound,
  // the person asked for all of it.
  replaceAll(text) {
    this._lines = [];
    this._head = 0;
    this._dropped = 0;
    this._open = false;
    this._cr = false;
    this._ed = null;
    this._sgr = null;
    this._max = Infinity;
    this._collapsed = false;
    this.write(text);
  }

  // The open line is edited as pieces (slices of the written text) with a
  // length, and stored (_commit) once per write: a run of \b or \r costs
  // O(1) each, not a copy of the line each (print('x'*400000 +
  // '\bx'*80000) took seconds to minutes when every \b re-sliced the
  // line). A line keeps its first LINE_KEEP characters — all a row shows —
  // and counts the rest (extra), so one line's memory is bounded too.
  _edit() {
    if (this._ed) return this._ed;
    const l = this._lines[this._lines.length - 1];
    const t = lineText(l);
    this._ed = { pieces: [t], len: t.length, extra: lineExtra(l) };
    return this._ed;
  }

  _commit() {
    const ed = this._ed;
    if (!ed) return;
    this._ed = null;
    const t = ed.pieces.join('');
    this._lines[this._lines.length - 1] = ed.extra ? { text: t, extra: ed.extra } : t;
  }

  _put(s) {
    if (CONTROL_RE.test(s)) s = s.replace(CONTROL_RE_G, '');
    if (!s) return;
    if (!this._open) {
      this._lineStart = sgrPrefix(this._sgr);
      this._lines.push(this._lineStart);
      this._open = true;
      this._cr = false;
    }
    const ed = this._edit();
    if (this._cr) {
      ed.pieces = [this._lineStart];
      ed.len = this._lineStart.length;
      ed.extra = 0;
      this._cr = false;
    }
    if (ed.extra > 0 || ed.len >= LINE_KEEP) { ed.extra += s.length; return; }
    const room = LINE_KEEP - ed.len;
    if (s.length > room) { ed.extra += s.length - room; s = s.slice(0, room); }
    ed.pieces.push(s);
    ed.len += s.length;
  }

  _newline() {
    if (!this._open) {
      this._lineStart = sgrPrefix(this._sgr);
      this._lines.push(this._lineStart);
    }
    this._commit();
    const line = lineText(this._lines[this._lines.length - 1]);
    if (line.indexOf('\x1b') >= 0) this._sgr = sgrAfter(line);
    this._open = false;
    this._cr = false;
  }

  _backspace() {
    if (!this._open) return;
    const ed = this._edit();
    if (ed.extra > 0) { ed.extra--; return; }
    if (ed.len <= this._lineStart.length) return;
    const p = ed.pieces;
    while (p.length && !p[p.length - 1]) p.pop();
    // NB: slicing a flat piece is O(1) in engines (a view on its parent);
    // join in _commit makes the stored line a fresh string.
    p[p.length - 1] = p[p.length - 1].slice(0, -1);
    ed.len--;
  }

  _trim() {
    const kept = this._lines.length - this._head;
    if (kept <= this._max) return;
    const drop = kept - this._max;
    for (let i = this._head; i < this._head + drop; i++) this._lines[i] = undefined;
    this._head += drop;
    this._dropped += drop;
    // NB: compact once the dropped prefix is most of the array, so the
    // array stays within 2x maxLines and dropping costs O(1) amortised.
    if (this._head > 1024 && this._head * 2 > this._lines.length) {
      this._lines = this._lines.slice(this._head);
      this._head = 0;
    }
  }

  // setCollapsed switches between the first and last lines and all of
  // them; a view following the end keeps following it, one scrolled to its
  // first lines keeps showing them (the same rows in both).
  setCollapsed(collapsed) {
    this._collapsed = collapsed;
    this._render();
  }

  schedule() {
    if (this._raf || this._disposed) return;
    this._raf = requestAnimationFrame(() => { this._raf = 0; this._render(); });
  }

  dispose() {
    this._disposed = true;
    if (this._raf) cancelAnimationFrame(this._raf);
    if (this._resizeObs) this._resizeObs.unobserve(this._scroller);
    this._lines = [];
    this._ed = null;
    this.el.remove();
  }

  _kept() { return this._lines.length - this._head; }

  _isCollapsed() { return this._collapsed && this._kept() > COLLAPSE_HEAD + COLLAPSE_TAIL + 1; }

  // _line is the text of row r (null: the collapsed marker's row).
  _line(r) {
    const kept = this._kept();
    if (this._isCollapsed()) {
      if (r < COLLAPSE_HEAD) return this._lines[this._head + r];
      if (r === COLLAPSE_HEAD) return null;
      return this._lines[this._head + kept - COLLAPSE_TAIL + (r - COLLAPSE_HEAD - 1)];
    }
    return this._lines[this._head + r];
  }

  _render() {
    if (this._disposed) return;
    const kept = this._kept();
    const collapsed = this._isCollapsed();
    const rows = collapsed ? COLLAPSE_HEAD + 1 + COLLAPSE_TAIL : kept;
    const total = this.lineCount;
    this._notices(total);
    this._toggle.hidden = kept <= COLLAPSE_HEAD + COLLAPSE_TAIL + 1;
    this._toggle.textContent = collapsed ? `Show all ${kept.toLocaleString('en-US')} lines` : 'Show fewer lines';
    this._toggle.setAttribute('aria-expanded', String(!collapsed));
    const height = rows * ROW_HEIGHT;
    this._spacer.style.height = height + 'px';
    const s = this._scroller;
    const view = s.clientHeight || DEFAULT_VIEW;
    if (this._follow && height > view) s.scrollTop = height - view;
    const top = s.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(rows, Math.ceil((top + view) / ROW_HEIGHT) + OVERSCAN, first + MAX_POOL);
    while (this._pool.length < last - first) {
      const row = el('div', 'ov-row');
      row.dataset.testid = this._rowTestId;
      row._text = undefined;
      this._pool.push(row);
      s.append(row);
    }
    this._marker.hidden = true;
    let used = 0;
    for (let r = first; r < last; r++) {
      const line = this._line(r);
      if (line === null) {
        this._marker.hidden = false;
        this._marker.style.transform = `translateY(${r * ROW_HEIGHT}px)`;
        this._marker.textContent = `⋯ ${(kept - COLLAPSE_HEAD - COLLAPSE_TAIL).toLocaleString('en-US')} lines not shown ⋯`;
        continue;
      }
      const row = this._pool[used++];
      row.hidden = false;
      row.style.transform = `translateY(${r * ROW_HEIGHT}px)`;
      if (row._text !== line) {
        row._text = line;
        // NB: one huge line (a 10 MB print without a newline) would cost
        // seconds of layout per frame: a row shows its start only.
        const text = lineText(line);
        const hidden = Math.max(0, text.length - MAX_ROW_CHARS) + lineExtra(line);
        const shown = text.length > MAX_ROW_CHARS ? text.slice(0, MAX_ROW_CHARS) : text;
        if (shown.indexOf('\x1b') < 0) row.textContent = shown;
        else row.replaceChildren(ansiToFragment(shown));
        if (hidden > 0) {
          const more = el('span', 'ov-more');
          more.textContent = ` … ${hidden.toLocaleString('en-US')} more characters on this line`;
          row.append(more);
        }
      }
    }
    for (let i = used; i < this._pool.length; i++) {
      const row = this._pool[i];
      if (!row.hidden) { row.hidden = true; row._text = undefined; row.textContent = ''; }
    }
  }

  _notices(total) {
    if (this._fullShown) return; // _openFull says what is shown
    if (!this._dropped) { this._notice.hidden = true; return; }
    this._notice.hidden = false;
    const msg = `${this._dropped.toLocaleString('en-US')} earlier lines not kept`;
    if (!this._fullText) { this._notice.textContent = msg + ` (of ${total.toLocaleString('en-US')})`; return; }
    if (this._noticeKey === this._dropped) return;
    this._noticeKey = this._dropped;
    const b = button(msg + ' — open the full text', () => this._openFull(b));
    b.dataset.testid = 'fulltext';
    this._notice.replaceChildren(b);
  }

  async _openFull(b) {
    b.disabled = true;
    b.textContent = 'Fetching the full text…';
    try {
      const text = await this._fullText();
      this.replaceAll(text);
      this._fullShown = true;
      const done = el('span', 'ov-fulltext-shown');
      done.dataset.testid = 'fulltext-shown';
      done.textContent = `Showing the full text: ${this.lineCount.toLocaleString('en-US')} lines.`;
      this._noticeKey = -1;
      this._notice.hidden = false;
      this._notice.replaceChildren(done);
      this._render();
    } catch (err) {
      const p = el('span', 'ov-fulltext-error');
      p.setAttribute('role', 'alert');
      p.textContent = 'The full text could not be fetched: ' + (err && err.message || err) + '. Try again.';
      this._noticeKey = -1;
      b.disabled = false;
      b.textContent = `${this._dropped.toLocaleString('en-US')} earlier lines not kept — open the full text`;
      this._notice.replaceChildren(b, p);
    }
  }
}

// --- ANSI ---

// ansiToFragment turns text with ANSI escape codes into a DocumentFragment
// of text nodes and styled spans (SGR: 16, 256 and 24-bit colours, bold,
// dim, italic, underline, inverse, strike, resets). Other escape sequences
// (cursor moves, titles) are dropped. The text only ever becomes text nodes.
export function ansiToFragment(text) {
  const frag = document.createDocumentFragment();
  text = text == null ? '' : String(text);
  if (text.indexOf('\x1b') < 0) {
    if (text) frag.append(text);
    return frag;
  }
  const re = new RegExp(ESC_SOURCE, 'g');
  const st = newSGR();
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) emit(frag, text.slice(last, m.index), st);
    if (m[2] === 'm' && !/[?<=>]/.test(m[1] || '')) applySGR(st, m[1] || '');
    last = re.lastIndex;
  }
  if (last < text.length) emit(frag, text.slice(last), st);
  return frag;
}

// ESC_SOURCE: CSI (ESC [ params final), OSC (ESC ] ... BEL|ST), charset
// selections and two-character escapes; a lone ESC too.
const ESC_SOURCE = '\\x1b(?:\\[([0-9;:?<=>]*)[ -/]*([@-~])|\\][^\\x07\\x1b]*(?:\\x07|\\x1b\\\\)?|[()#*+][0-9A-Za-z]|[@-Z\\\\-_=>78])?';
const CONTROL_RE = /[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]/;
const CONTROL_RE_G = /[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]/g;

function newSGR() {
  return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false, strike: false };
}

function isDefault(st) {
  return !st || (st.fg === null && st.bg === null && !st.bold && !st.dim && !st.italic && !st.underline && !st.inverse && !st.strike);
}

// A colour is an index 0..15 (themed) or an [r, g, b] triple.
function applySGR(st, params) {
  const p = params === '' ? [0] : params.replace(/:/g, ';').split(';').map((x) => (x === '' ? 0 : parseInt(x, 10)));
  for (let i = 0; i < p.length; i++) {
    const n = p[i];
    if (n === 0) Object.assign(st, newSGR());
    else if (n === 1) st.bold = true;
    else if (n === 2) st.dim = true;
    else if (n === 3) st.italic = true;
    else if (n === 4 || n === 21) st.underline = true;
    else if (n === 7) st.inverse = true;
    else if (n === 9) st.strike = true;
    else if (n === 22) { st.bold = false; st.dim = false; }
    else if (n === 23) st.italic = false;
    else if (n === 24) st.underline = false;
    else if (n === 27) st.inverse = false;
    else if (n === 29) st.strike = false;
    else if (n >= 30 && n <= 37) st.fg = n - 30;
    else if (n === 39) st.fg = null;
    else if (n >= 40 && n <= 47) st.bg = n - 40;
    else if (n === 49) st.bg = null;
    else if (n >= 90 && n <= 97) st.fg = n - 90 + 8;
    else if (n >= 100 && n <= 107) st.bg = n - 100 + 8;
    else if (n === 38 || n === 48) {
      let colour = null;
      if (p[i + 1] === 5 && i + 2 < p.length) { colour = palette256(p[i + 2]); i += 2; }
      else if (p[i + 1] === 2 && i + 4 < p.length) { colour = [p[i + 2], p[i + 3], p[i + 4]].map(clamp255); i += 4; }
      else { i = p.length; } // malformed: ignore the rest
      if (colour !== null) { if (n === 38) st.fg = colour; else st.bg = colour; }
    }
  }
}

function clamp255(v) { return Math.max(0, Math.min(255, v | 0)); }

function palette256(n) {
  n = n | 0;
  if (n < 0 || n > 255) return null;
  if (n < 16) return n;
  if (n < 232) {
    const levels = [0, 95, 135, 175, 215, 255];
    const i = n - 16;
    return [levels[Math.floor(i / 36)], levels[Math.floor(i / 6) % 6], levels[i % 6]];
  }
  const g = 8 + 10 * (n - 232);
  return [g, g, g];
}

// sgrPrefix is the escape sequence that restores st at a line's start, so
// each line renders alone (the virtualised view renders any line first).
function sgrPrefix(st) {
  if (isDefault(st)) return '';
  const c = [];
  if (st.bold) c.push(1);
  if (st.dim) c.push(2);
  if (st.italic) c.push(3);
  if (st.underline) c.push(4);
  if (st.inverse) c.push(7);
  if (st.strike) c.push(9);
  for (const [base, col] of [[38, st.fg], [48, st.bg]]) {
    if (col === null) continue;
    if (Array.isArray(col)) c.push(base, 2, col[0], col[1], col[2]);
    else c.push(base, 5, col);
  }
  return '\x1b[' + c.join(';') + 'm';
}

function sgrAfter(line) {
  const st = newSGR();
  const re = new RegExp(ESC_SOURCE, 'g');
  let m;
  while ((m = re.exec(line)) !== null) if (m[2] === 'm' && !/[?<=>]/.test(m[1] || '')) applySGR(st, m[1] || '');
  return isDefault(st) ? null : st;
}

function emit(frag, s, st) {
  if (isDefault(st)) { frag.append(s); return; }
  const span = document.createElement('span');
  let fg = st.fg;
  let bg = st.bg;
  if (st.inverse) { [fg, bg] = [bg, fg]; if (fg === null) span.classList.add('ansi-fg-inverse'); if (bg === null) span.classList.add('ansi-bg-inverse'); }
  if (typeof fg === 'number') span.classList.add('ansi-fg-' + fg);
  else if (Array.isArray(fg)) span.style.color = readable(fg);
  if (typeof bg === 'number') span.classList.add('ansi-bg-' + bg);
  else if (Array.isArray(bg)) {
    span.style.backgroundColor = `rgb(${bg[0]}, ${bg[1]}, ${bg[2]})`;
    if (fg === null) span.style.color = luminance(bg) > 0.18 ? '#000000' : '#ffffff';
  }
  if (st.bold) span.classList.add('ansi-bold');
  if (st.dim) span.classList.add('ansi-dim');
  if (st.italic) span.classList.add('ansi-italic');
  if (st.underline) span.classList.add('ansi-underline');
  if (st.strike) span.classList.add('ansi-strike');
  span.textContent = s;
  frag.append(span);
}

// readable returns an rgb() colour near c with at least 4.5:1 contrast on
// the output background of the page's colour scheme (outputs.css --ov-bg).
const readableCache = new Map();
function readable(c) {
  const dark = typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches;
  const key = c.join(',') + (dark ? 'd' : 'l');
  let v = readableCache.get(key);
  if (v) return v;
  const bg = dark ? [0x1e, 0x1e, 0x1e] : [0xff, 0xff, 0xff];
  const target = dark ? 255 : 0;
  let [r, g, b] = c;
  for (let i = 0; i < 20 && contrast([r, g, b], bg) < 4.5; i++) {
    r = Math.round(r + (target - r) * 0.15);
    g = Math.round(g + (target - g) * 0.15);
    b = Math.round(b + (target - b) * 0.15);
  }
  v = `rgb(${r}, ${g}, ${b})`;
  if (readableCache.size > 1024) readableCache.clear();
  readableCache.set(key, v);
  return v;
}

function luminance([r, g, b]) {
  const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}

function contrast(a, b) {
  const la = luminance(a);
  const lb = luminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

// --- frames ---

// FRAME_CSS: the frame document's own base style (it sees none of ours).
const FRAME_CSS = 'html{color-scheme:light;background:#fff;color:#1f2328}body{margin:0;padding:4px 8px;font:14px/1.4 system-ui,sans-serif;overflow-x:auto}' +
  'table{border-collapse:collapse;font-size:13px}th,td{padding:2px 8px;border:1px solid #8884;text-align:right}' +
  'th{font-weight:600}img,svg{max-width:100%}';

// frameDocument is the document an output frame shows: our small helper
// first (it reports the content's height to the page), then the output.
function frameDocument(body) {
  return '<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">' +
    '<style>' + FRAME_CSS + '</style><script>(' + frameHelper.toString() + ')()</script>' +
    '</head><body>' + body + '</body></html>';
}

// <frame-bootstrap> NB: frame.go serves this function as /ui/frame.html's
// only script: keep it self-contained (no names from this module), ES5.
function frameBootstrap() {
  var done = false;
  addEventListener('message', function (e) {
    if (done || e.source !== parent) return;
    var d = e.data;
    if (!d || d.type !== 'ov-write' || typeof d.html !== 'string') return;
    done = true;
    document.open();
    document.write(d.html);
    document.close();
    (d.scripts || []).forEach(function (src) {
      var s = document.createElement('script');
      s.text = String(src);
      document.head.appendChild(s);
    });
  });
  parent.postMessage({ type: 'ov-ready' }, '*');
}
// </frame-bootstrap>

// plotlySource fetches plotly.js once per page (the frames cannot: see
// _frame): {text} or {reason} it cannot be had.
const plotlySources = new Map();
function plotlySource(url) {
  if (!url) return Promise.resolve({ reason: 'no plotly.js is configured' });
  let p = plotlySources.get(url);
  if (p) return p;
  let shown = url;
  try { const u = new URL(url, document.baseURI); shown = u.protocol === 'data:' || u.protocol === 'blob:' ? u.protocol : u.pathname; } catch { /* keep url */ }
  p = fetch(url).then(async (r) => {
    if (!r.ok) return { reason: `plotly.js is not available at ${shown} (HTTP ${r.status})` };
    return { text: await r.text() };
  }, (err) => ({ reason: `plotly.js could not be fetched from ${shown} (${err && err.message || err})` }));
  plotlySources.set(url, p);
  return p;
}

// frameHelper runs inside an output frame (serialised by toString): it
// posts the content's height whenever it changes, so the page sizes the
// frame without reaching into it (it cannot: another origin).
function frameHelper() {
  var last = -1;
  function report() {
    var d = document.documentElement;
    var h = Math.ceil(Math.max(d.getBoundingClientRect().height, document.body ? document.body.scrollHeight : 0));
    if (h !== last) { last = h; parent.postMessage({ type: 'ov-height', height: h }, '*'); }
  }
  if (typeof ResizeObserver === 'function') new ResizeObserver(report).observe(document.documentElement);
  addEventListener('load', report);
  document.addEventListener('DOMContentLoaded', report);
}

// plotlyDraw runs inside a Plotly frame after plotly.js loaded (or not).
function plotlyDraw(fig) {
  function post(m) { parent.postMessage(m, '*'); }
  if (typeof Plotly === 'undefined') { post({ type: 'ov-plotly-failed', reason: 'plotly.js did not load in the frame' }); return; }
  var div = document.getElementById('ov-plot');
  var layout = Object.assign({}, fig.layout || {});
  var config = Object.assign({ responsive: true, displaylogo: false }, fig.config || {});
  Plotly.newPlot(div, fig.data || [], layout, config).then(function () {
    post({ type: 'ov-plotly-drawn' });
  }, function (err) {
    post({ type: 'ov-plotly-failed', reason: 'plotly.js could not draw it: ' + (err && err.message || err) });
  });
}

// --- small helpers ---

// A stored line is a string, or {text, extra} when it was longer than
// LINE_KEEP: its first characters and how many more it had.
function lineText(l) { return typeof l === 'string' ? l : l.text; }
function lineExtra(l) { return typeof l === 'string' ? 0 : l.extra; }

function el(tag, className) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  return e;
}

function button(text, onClick) {
  const b = el('button', 'ov-button');
  b.type = 'button';
  b.textContent = text;
  b.addEventListener('click', onClick);
  return b;
}

// joinText: Jupyter MIME values may be a string or a list of strings.
function joinText(v) {
  if (Array.isArray(v)) return v.join('');
  return typeof v === 'string' ? v : String(v ?? '');
}

function safeJSON(v) {
  try { return JSON.stringify(v, null, 2); } catch { return String(v); }
}
