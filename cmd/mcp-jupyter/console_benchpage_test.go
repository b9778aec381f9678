package main

import (
	"io"
	"net/http"
	"os"
)

// A test-only page for the console benchmarks' plumbing: it follows one
// execution's stream text from /ws, a div per line, the last 2,000 kept.
// CONSOLE_BENCH_TINY_PAGE=1 measures it instead of the console.

const tinyPageHTML = `<!doctype html><meta charset="utf-8"><title>bench page</title><link rel="icon" href="data:,">
<div data-testid="execution-view"><span data-testid="live" data-state="connecting">live</span>
<button data-testid="collapse">collapse</button>
<div data-testid="outputs" style="height:600px;overflow:auto;font:12px monospace"></div></div>
<script type="module" src="page.js"></script>`

const tinyPageJS = `const q = new URLSearchParams(location.search);
const exec = q.get('execution');
const out = document.querySelector('[data-testid=outputs]');
const live = document.querySelector('[data-testid=live]');
const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws?token=' + encodeURIComponent(q.get('token')));
ws.onopen = () => { live.dataset.state = 'live'; };
ws.onmessage = (m) => {
  for (const line of m.data.split('\n')) {
    if (!line) continue;
    const ev = JSON.parse(line);
    if (ev.type !== 'IOPubMessageReceived') continue;
    const p = ev.payload;
    if (p.execution_id !== exec || p.msg_type !== 'stream') continue;
    for (const l of p.content.text.split('\n')) {
      if (!l) continue;
      const d = document.createElement('div');
      d.textContent = l;
      out.appendChild(d);
    }
    while (out.childElementCount > 2000) out.firstChild.remove();
    out.scrollTop = out.scrollHeight;
  }
};
document.querySelector('[data-testid=collapse]').onclick = () => {
  out.hidden = !out.hidden;
  document.body.dataset.collapsed = String(out.hidden);
};
`

func tinyPageMount(mux *http.ServeMux) bool {
	mux.HandleFunc("GET /bench-page/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bench-page/page.js" {
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = io.WriteString(w, tinyPageJS)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, tinyPageHTML)
	})
	return os.Getenv("CONSOLE_BENCH_TINY_PAGE") == "1"
}
