// Issue 19's revision matrix, the TypeScript half: runs a list of tool
// calls (written by TestRevisionMatrix) through one of the two official MCP
// TypeScript clients, over stdio or Streamable HTTP, and prints what came
// back so that the Go test compares every client's answers.
//
//   MCPJ_SUITE=steps.json MCPJ_SDK=1|2 MCPJ_TRANSPORT=http MCPJ_URL=http://127.0.0.1:3000/mcp MCPJ_TOKEN=… node suite.mjs
//   MCPJ_SUITE=steps.json MCPJ_SDK=1|2 MCPJ_TRANSPORT=stdio MCPJ_COMMAND=/path/mcp-jupyter node suite.mjs
//
// MCPJ_SDK=1 is @modelcontextprotocol/sdk 1.32.2 (testkit/outside/mcpsdk:
// MCP 2025-11-25 through initialize); MCPJ_SDK=2 is
// @modelcontextprotocol/client 2.4.0 (this directory), negotiating
// 2026-07-28 (MCPJ_NEGOTIATION: auto, the default, or pin; legacy for the
// 2025 handshake). A step is {tool, args} or {read: uri}; "${name}" in an
// argument is replaced by what an earlier step saved. Saving is done by the
// Go side's rules, passed along in the step: save: {name: "structured
// key"} and saveText: {name: "regexp"} (first group, or the match).
// Prints one JSON object {ok, sdk, protocol_version, steps: [...]}; exits 1
// on a protocol error (a refusal is a tool result, never an exception).

import { readFileSync } from 'node:fs';
import { loadSDK, text } from './lib.mjs';

const sdk = process.env.MCPJ_SDK || '2';
const transportKind = process.env.MCPJ_TRANSPORT || 'http';
const callTimeoutMs = Number(process.env.MCPJ_CALL_TIMEOUT_MS || 180000);

function negotiation() {
  const mode = process.env.MCPJ_NEGOTIATION || 'auto';
  if (mode === 'pin') return { mode: { pin: '2026-07-28' } };
  return { mode };
}

function substitute(v, saved) {
  if (typeof v === 'string') {
    return v.replace(/\$\{([a-z_0-9]+)\}/g, (_, k) => {
      if (!(k in saved)) throw new Error(`step uses \${${k}}, which no earlier step saved`);
      return saved[k];
    });
  }
  if (Array.isArray(v)) return v.map(x => substitute(x, saved));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, saved)]));
  return v;
}

async function main() {
  const S = await loadSDK(sdk);
  const steps = JSON.parse(readFileSync(process.env.MCPJ_SUITE, 'utf8'));
  const out = { ok: false, sdk: S.name, node: process.version, steps: [] };
  const opts = sdk === '2' ? { versionNegotiation: negotiation() } : {};
  const client = new S.Client({ name: `mcp-jupyter-matrix-sdk${sdk}`, version: '1.0.0' }, opts);
  let transport;
  if (transportKind === 'stdio') {
    transport = new S.StdioClientTransport({ command: process.env.MCPJ_COMMAND, args: ['stdio'], env: process.env, stderr: 'inherit' });
  } else {
    transport = new S.StreamableHTTPClientTransport(new URL(process.env.MCPJ_URL),
      { requestInit: { headers: { Authorization: `Bearer ${process.env.MCPJ_TOKEN}` } } });
  }
  try {
    // SDK 1 tells the transport the revision the server's initialize
    // answered (HTTP transports put it in a header); the stdio transport
    // has no such method, so the client skips it: observe it on both.
    let answered;
    const setVersion = transport.setProtocolVersion?.bind(transport);
    transport.setProtocolVersion = v => { answered = v; setVersion?.(v); };
    await client.connect(transport, { timeout: callTimeoutMs });
    out.protocol_version = typeof client.getNegotiatedProtocolVersion === 'function'
      ? client.getNegotiatedProtocolVersion()
      : answered;
    out.era = typeof client.getProtocolEra === 'function' ? client.getProtocolEra() : 'legacy';
    const saved = {};
    for (const step of steps) {
      const rec = { name: step.name };
      if (step.read) {
        const uri = substitute(step.read, saved);
        const res = await client.readResource({ uri }, { timeout: callTimeoutMs });
        rec.contents = (res.contents || []).map(c => ({ uri: c.uri, mimeType: c.mimeType, size: (c.text ?? c.blob ?? '').length }));
      } else {
        const args = substitute(step.args || {}, saved);
        const res = await client.callTool({ name: step.tool, arguments: args }, undefined, { timeout: callTimeoutMs });
        rec.isError = res.isError === true;
        rec.content = (res.content || []).map(c => c.type === 'text' ? { type: 'text', text: c.text } : { type: c.type, uri: c.uri, mimeType: c.mimeType });
        rec.structured = res.structuredContent ?? null;
        const said = text(res);
        for (const [k, key] of Object.entries(step.save || {})) {
          const v = res.structuredContent?.[key];
          if (typeof v !== 'string' || v === '') throw new Error(`step ${step.name}: no structuredContent.${key} to save as ${k}: ${said}`);
          saved[k] = v;
        }
        for (const [k, re] of Object.entries(step.saveText || {})) {
          const all = said + '\n' + JSON.stringify(res.content || []);
          const m = all.match(new RegExp(re));
          if (!m) throw new Error(`step ${step.name}: nothing matches /${re}/ to save as ${k}: ${all}`);
          saved[k] = m[1] ?? m[0];
        }
      }
      out.steps.push(rec);
    }
    out.ok = true;
  } finally {
    await client.close().catch(() => {});
  }
  return out;
}

let code = 0;
let out;
try {
  out = await main();
} catch (e) {
  out = { ok: false, failed: `${e?.stack || e}` };
  process.stderr.write(`suite.mjs: FAILED: ${out.failed}\n`);
  code = 1;
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(code);
