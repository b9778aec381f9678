// api.js: the console's one way to the server. The token arrives once in
// ?token= (the address `mcp-jupyter serve` prints), is kept in this tab only
// (sessionStorage: gone when the tab closes, never shared with other tabs or
// sent as a cookie) and dropped from the address bar, so it is neither in the
// history nor in a copied link. Every API call sends it as a bearer header;
// the WebSocket, which cannot carry headers, as ?token=.

const TOKEN_KEY = 'mcp-jupyter-token';

// adoptToken moves ?token= from the address into the tab's storage. Call it
// first, before anything reads location.
export function adoptToken() {
  const url = new URL(window.location.href);
  const t = url.searchParams.get('token');
  if (t !== null) {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
  return token();
}

// token is the tab's token, or '' when it has none.
export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

// setToken keeps a token a person pasted (the login form) in this tab.
export function setToken(t) {
  sessionStorage.setItem(TOKEN_KEY, t);
}

// forgetToken logs the tab out.
export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// ApiError is a refused or failed call: status is the HTTP status (0: no
// answer), message the server's own explanation.
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

// api calls /ui/api/<path> and returns its JSON. A refusal throws ApiError
// carrying the server's {"error": "..."} message.
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/ui/api/' + path.replace(/^\//, ''), { method, headers, body: payload, signal, cache: 'no-store' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'the server did not answer: ' + (e && e.message || e));
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
  if (!res.ok) {
    const msg = (json && (json.error || json.message)) || text || res.statusText;
    throw new ApiError(res.status, msg, json);
  }
  return json;
}

// fetchAsset fetches /assets/<sha256> (a stored output: full text, image,
// Plotly JSON) with the token, returning the Response.
export async function fetchAsset(sum, { signal } = {}) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  const res = await fetch('/assets/' + encodeURIComponent(sum), { headers, signal });
  if (!res.ok) throw new ApiError(res.status, (await res.text()) || res.statusText);
  return res;
}

// wsURL is the address of the live feed (/ws) with the given query
// parameters (since, kernel) and the token.
export function wsURL(params = {}) {
  const u = new URL('/ws', window.location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  const t = token();
  if (t) u.searchParams.set('token', t);
  return u.toString();
}
