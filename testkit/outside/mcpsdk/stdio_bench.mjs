// The stdio half of BenchmarkSDKStdioExecute (cmd/mcp-jupyter): the official
// MCP TypeScript SDK, as a desktop agent runs it, spawns the server binary
// with the stdio transport, starts a kernel and times execute("1+1").
//
//   MCPJ_BIN=/path/to/mcp-jupyter MCP_DATA_DIR=… JUPYTER_PATH=… node stdio_bench.mjs
//
// It prints "ready" once a warm-up execute came back ok, then for each line
// N on stdin runs N executes and prints their latencies in microseconds as
// one JSON array; "quit" (or the end of stdin) shuts the kernel down and
// ends. The server's stderr goes to MCPJ_SERVER_LOG (default: discarded).
// Exits 1 naming what failed.

import { openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const timeout = Number(process.env.MCPJ_CALL_TIMEOUT_MS || 180000);

function fail(msg) {
  process.stderr.write(`stdio_bench.mjs: ${msg}\n`);
  process.exit(1);
}

const bin = process.env.MCPJ_BIN;
if (!bin) fail('set MCPJ_BIN to the mcp-jupyter binary');

const transport = new StdioClientTransport({
  command: bin,
  args: ['stdio'],
  // NB: the whole environment (MCP_DATA_DIR, JUPYTER_PATH...), not the SDK's
  // short default list.
  env: process.env,
  stderr: process.env.MCPJ_SERVER_LOG ? openSync(process.env.MCPJ_SERVER_LOG, 'a') : 'ignore',
});
const client = new Client({ name: 'mcp-jupyter-stdio-bench', version: '1.0.0' });

async function call(tool, args) {
  const res = await client.callTool({ name: tool, arguments: args }, undefined, { timeout });
  const text = (res.content || []).filter(c => c.type === 'text').map(c => c.text).join('\n');
  if (res.isError) fail(`${tool} refused: ${text}`);
  return { sc: res.structuredContent || {}, text };
}

let kernel;

async function execute() {
  const start = performance.now();
  const { sc, text } = await call('execute', { kernel, code: '1+1' });
  const us = (performance.now() - start) * 1000;
  if (sc.status !== 'ok' || !/^Out\[\d+\]: 2$/m.test(text)) fail(`execute("1+1") came back ${JSON.stringify(sc)}: ${text}`);
  return us;
}

try {
  await client.connect(transport, { timeout });
  const started = await call('start_kernel', { kernelspec: 'python3', label: 'sdk-stdio-bench' });
  kernel = started.sc.kernel_id;
  if (!kernel) fail(`start_kernel returned no kernel_id: ${started.text}`);
  await execute(); // warm up
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = line.trim();
    if (cmd === 'quit') break;
    const n = Number(cmd);
    if (!Number.isInteger(n) || n < 1) fail(`want a count of executes on stdin, got ${JSON.stringify(cmd)}`);
    const lat = [];
    for (let i = 0; i < n; i++) lat.push(await execute());
    process.stdout.write(JSON.stringify(lat) + '\n');
  }
  await call('shutdown_kernel', { kernel });
  await client.close();
} catch (e) {
  fail(`unexpected: ${e?.stack || e}`);
}
process.exit(0);
