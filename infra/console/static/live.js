// live.js: the console's live feed, a client of /ws (infra/ws/doc.go).
//
// The server sends the durable events after since=<seq>, in order, no gap
// and no duplicate. LiveFeed keeps the last seq it handed on and always
// reconnects with since=<that seq>, whatever closed the socket (1001 server
// shutdown, 1006 network, 4008 slow consumer, a missed pong), waiting 0.5 s
// and doubling up to 10 s between tries, so a page left open for a day
// never misses or repeats an event while the server still holds the events
// after that seq. Only 4001 (token revoked) ends it. When the server no
// longer serves that seq (retention removed the events after it: HTTP 410;
// its log was reset: 400) the browser sees only a failed connection:
// onTrouble lets the page ask the server and start afresh (app.js).
//
// NB: events are delivered at most once, in seq order: an event whose seq
// is not above the last one delivered is dropped here, so whoever applies
// them never sees a repeat, even if a server resent one.

import { wsURL } from './api.js';

// CLOSE_REVOKED: the principal's token was revoked or rotated.
export const CLOSE_REVOKED = 4001;

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10000;
// A connection open this long is healthy: the next failure starts the
// backoff afresh.
const STABLE_MS = 5000;
// Ping the server this often; no message at all for SILENT_MS means the
// connection is dead though the socket did not say so (a sleeping laptop,
// a NAT that forgot us): close it and resume.
const PING_MS = 20000;
const SILENT_MS = 50000;

export class LiveFeed {
  // since: the seq the page's first read reflects (GET /ui/api/now's seq);
  // null: not known, follow from now on (until an event gives one).
  // onEvents(events): a batch of new events, ascending seq.
  // onState(state, detail): 'connecting' | 'live' | 'offline'.
  // onRevoked(reason): the token is no longer valid (close 4001).
  // onTrouble(): a connection failed before it opened (the server may be
  // down, or refused the token): the page can check which.
  constructor({ since = null, kernel, onEvents, onState, onRevoked, onTrouble } = {}) {
    this._seq = since;
    this._kernel = kernel;
    this._onEvents = onEvents || (() => {});
    this._onState = onState || (() => {});
    this._onRevoked = onRevoked || (() => {});
    this._onTrouble = onTrouble || (() => {});
    this._ws = null;
    this._delay = MIN_DELAY_MS;
    this._retryTimer = 0;
    this._stableTimer = 0;
    this._pingTimer = 0;
    this._lastHeard = 0;
    this._stopped = true;
    this._state = 'offline';
    this.connects = 0; // connections opened, for the curious (and tests)
    this.repeats = 0;  // events received at or below the last seq (dropped)
    this._held = false;
    this._online = () => { if (!this._stopped && !this._held && !this._ws) this._retryNow(); };
  }

  get lastSeq() { return this._seq; }
  get state() { return this._state; }

  start() {
    if (!this._stopped) return;
    this._stopped = false;
    window.addEventListener('online', this._online);
    this._connect();
  }

  stop() {
    this._stopped = true;
    window.removeEventListener('online', this._online);
    clearTimeout(this._retryTimer);
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, 'page closed the view'); } catch { /* already closed */ }
    }
    this._setState('offline');
  }

  // hold closes the socket and stays offline, keeping its seq, until
  // resume(): as a laptop that sleeps.
  hold() {
    if (this._stopped) return;
    this._held = true;
    clearTimeout(this._retryTimer);
    if (this._ws) this._ws.close(4000, 'held by the page');
  }

  resume() {
    if (!this._held) return;
    this._held = false;
    this._delay = MIN_DELAY_MS;
    this._retryNow();
  }

  // drop closes the socket as a network failure would; the feed resumes by
  // itself (used to check resume, and by the "reconnect" control).
  drop() {
    if (this._ws) this._ws.close(4000, 'closed by the page');
  }

  _setState(state, detail) {
    if (this._state === state && !detail) return;
    this._state = state;
    this._onState(state, detail || {});
  }

  _clearTimers() {
    clearTimeout(this._stableTimer);
    clearInterval(this._pingTimer);
  }

  _connect() {
    if (this._stopped || this._held) return;
    this._setState('connecting');
    let ws;
    try {
      // NB: since=0 would be the whole log: without a seq, follow from now.
      ws = new WebSocket(wsURL({ since: this._seq === null ? undefined : this._seq, kernel: this._kernel }));
    } catch (e) {
      this._scheduleRetry(false);
      return;
    }
    this._ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.connects++;
      this._lastHeard = Date.now();
      this._setState('live');
      this._stableTimer = setTimeout(() => { this._delay = MIN_DELAY_MS; }, STABLE_MS);
      this._pingTimer = setInterval(() => this._ping(), PING_MS);
    };
    ws.onmessage = (m) => {
      this._lastHeard = Date.now();
      if (typeof m.data === 'string') this._receive(m.data);
    };
    ws.onerror = () => { /* onclose follows and says what to do */ };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._clearTimers();
      if (ev.code === CLOSE_REVOKED) {
        this._stopped = true;
        this._setState('offline');
        this._onRevoked(ev.reason || 'your token was revoked or rotated');
        return;
      }
      this._scheduleRetry(opened);
    };
  }

  _ping() {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this._lastHeard > SILENT_MS) {
      ws.close(4000, 'no answer to pings');
      return;
    }
    ws.send('{"type":"ping"}');
  }

  _receive(data) {
    const batch = [];
    for (const line of data.split('\n')) {
      if (!line) continue;
      let ev;
      try { ev = JSON.parse(line); } catch { continue; }
      if (!ev || typeof ev.seq !== 'number' || !ev.stream) continue; // a pong
      if (this._seq !== null && ev.seq <= this._seq) { this.repeats++; continue; } // NB: never apply an event twice
      this._seq = ev.seq;
      batch.push(ev);
    }
    if (batch.length) this._onEvents(batch);
  }

  _scheduleRetry(opened) {
    if (this._stopped) return;
    if (this._held) { this._setState('offline'); return; }
    const wait = this._delay;
    this._delay = Math.min(this._delay * 2, MAX_DELAY_MS);
    this._setState('offline', { retryInMs: wait });
    if (!opened) this._onTrouble();
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._connect(), wait);
  }

  _retryNow() {
    clearTimeout(this._retryTimer);
    this._connect();
  }
}
