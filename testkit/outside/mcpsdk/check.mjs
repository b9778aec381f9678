// Issue 14 (principals) checked from outside: the official MCP TypeScript
// SDK, a client no one on this project wrote, drives a running mcp-jupyter
// over Streamable HTTP with static bearer tokens.
//
//   MCPJ_ALICE_TOKEN=… MCPJ_BOB_TOKEN=… MCPJ_READER_TOKEN=… \
//     node check.mjs http://127.0.0.1:3000/mcp
//
// alice and bob hold the scopes read,execute,manage; the reader holds read.
// MCPJ_BOB_NAME names bob's principal (default "bob") for the share.
// MCPJ_REVOKE_HANDSHAKE=1 (set by TestOutsideSDK) adds a last step: the
// script asks on stderr for bob's token to be revoked, waits for "revoked"
// on stdin, and bob's still-open client must then get 401.
// Prints one JSON object; exits 1 naming the first check that failed
// (2: bad usage).

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';

const sdkVersion = JSON.parse(readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url))).version;

// A kernel start or a first execution on a loaded machine can take far
// longer than the SDK's default 60 s request timeout.
const callTimeoutMs = Number(process.env.MCPJ_CALL_TIMEOUT_MS || 180000);

const result = { ok: false, sdk: `@modelcontextprotocol/sdk ${sdkVersion}`, node: process.version };

class Mismatch extends Error {}

function check(cond, what, detail) {
  if (!cond) {
    throw new Mismatch(`${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}

function usage(msg) {
  process.stderr.write(`check.mjs: ${msg}\nusage: MCPJ_ALICE_TOKEN=… MCPJ_BOB_TOKEN=… MCPJ_READER_TOKEN=… node check.mjs URL (e.g. http://127.0.0.1:3000/mcp)\n`);
  process.exit(2);
}

const url = process.argv[2] || process.env.MCPJ_URL;
if (!url) usage('give the server URL of /mcp');
const tokens = {
  alice: process.env.MCPJ_ALICE_TOKEN,
  bob: process.env.MCPJ_BOB_TOKEN,
  reader: process.env.MCPJ_READER_TOKEN,
};
for (const [who, tok] of Object.entries(tokens)) {
  if (!tok) usage(`set MCPJ_${who.toUpperCase()}_TOKEN`);
}
const bobName = process.env.MCPJ_BOB_NAME || 'bob';

const clients = [];

// connect opens an SDK client authenticating with a static bearer token,
// as the SDK documents it: requestInit.headers. observe, if given, sees
// every HTTP response the transport gets.
async function connect(who, token, observe) {
  const client = new Client({ name: `mcp-jupyter-outside-${who}`, version: '1.0.0' });
  const opts = { requestInit: { headers: { Authorization: `Bearer ${token}` } } };
  if (observe) {
    opts.fetch = async (input, init) => {
      const res = await fetch(input, init);
      observe(res);
      return res;
    };
  }
  const transport = new StreamableHTTPClientTransport(new URL(url), opts);
  await client.connect(transport, { timeout: callTimeoutMs });
  clients.push(client);
  return client;
}

// revokeRequest is the stderr line asking the driver to revoke bob's token
// and answer "revoked" on stdin.
const revokeRequest = 'check.mjs: revoke bob now';

async function firstLine(stream) {
  const rl = createInterface({ input: stream });
  for await (const line of rl) {
    rl.close();
    return line.trim();
  }
  return undefined;
}

// printed42 says whether an execution result's outputs (the text parts
// after the summary) have the line 42 — not merely an id containing "42".
function printed42(r) {
  return r.parts.slice(1).some(p => p.split('\n').some(line => line.trim() === '42'));
}

// call returns the tool's result; a JSON-RPC error (not a tool error) is
// a mismatch: every refusal here is meant to be a tool result with isError.
async function call(client, who, tool, args) {
  try {
    const res = await client.callTool({ name: tool, arguments: args }, undefined, { timeout: callTimeoutMs });
    const parts = (res.content || []).filter(c => c.type === 'text').map(c => c.text);
    return { isError: res.isError === true, text: parts.join('\n'), parts, structured: res.structuredContent };
  } catch (err) {
    throw new Mismatch(`${who}'s ${tool} failed as a protocol error instead of a tool result: ${err.message}`);
  }
}

async function ok(client, who, tool, args) {
  const r = await call(client, who, tool, args);
  check(!r.isError, `${who}'s ${tool} was refused`, r.text);
  check(r.structured && typeof r.structured === 'object', `${who}'s ${tool} has no structuredContent`, r.text);
  return r;
}

async function refused(client, who, tool, args) {
  const r = await call(client, who, tool, args);
  check(r.isError, `${who}'s ${tool} ${JSON.stringify(args)} succeeded, want a refusal`, r.text);
  return r.text;
}

async function toolNames(client) {
  const res = await client.listTools(undefined, { timeout: callTimeoutMs });
  return res.tools.map(t => t.name).sort();
}

async function kernelIDs(client, who) {
  const r = await ok(client, who, 'list_kernels', {});
  return (r.structured.kernels || []).map(k => k.kernel_id);
}

// madeUp is an id of the same shape nobody was given.
function madeUp(id, ch) {
  return ch.repeat(id.length);
}

async function main() {
  const alice = await connect('alice', tokens.alice);
  const bob = await connect('bob', tokens.bob);
  const reader = await connect('reader', tokens.reader);
  result.protocol_version = alice.transport?.protocolVersion;
  result.server = alice.getServerVersion();

  // alice starts a kernel and runs code on it.
  const started = await ok(alice, 'alice', 'start_kernel', { kernelspec: 'python3', label: 'outside-sdk' });
  const kernel = started.structured.kernel_id;
  check(typeof kernel === 'string' && kernel !== '', 'start_kernel returned no kernel_id', started.structured);
  const ran = await ok(alice, 'alice', 'execute', { kernel, code: 'x = 41; print(x+1)', timeout_s: 120 });
  check(ran.structured.status === 'ok', "alice's execute did not finish ok", ran.structured);
  check(printed42(ran), "alice's execute output lacks the line 42", ran.parts);
  const execution = ran.structured.execution_id;
  check(typeof execution === 'string' && execution !== '', "alice's execute returned no execution_id", ran.structured);
  result.alice = { kernel, execution, status: ran.structured.status, output: ran.parts.slice(1).join('\n') };

  // bob, with the same scopes, sees none of it; every refusal reads as for
  // an id nobody has.
  const bobTools = await toolNames(bob);
  const aliceTools = await toolNames(alice);
  check(JSON.stringify(bobTools) === JSON.stringify(aliceTools), "bob's tools/list differs from alice's (same scopes)", { alice: aliceTools, bob: bobTools });
  for (const t of ['execute', 'start_kernel', 'list_kernels', 'get_execution', 'share_kernel']) {
    check(bobTools.includes(t), `bob's tools/list lacks ${t}`, bobTools);
  }
  const bobKernels = await kernelIDs(bob, 'bob');
  check(!bobKernels.includes(kernel), "bob's list_kernels shows alice's kernel", bobKernels);
  const unknownKernel = madeUp(kernel, 'f');
  const onHidden = await refused(bob, 'bob', 'execute', { kernel, code: 'print(x)' });
  const onUnknown = await refused(bob, 'bob', 'execute', { kernel: unknownKernel, code: 'print(x)' });
  check(onHidden === onUnknown.replaceAll(unknownKernel, kernel),
    "bob's execute on alice's kernel does not read as on an unknown kernel", { alice_kernel: onHidden, unknown_kernel: onUnknown });
  check(onHidden.includes(`no kernel or bound notebook "${kernel}"`), "bob's execute on alice's kernel does not say there is no such kernel", onHidden);
  const unknownExecution = madeUp(execution, 'e');
  const getHidden = await refused(bob, 'bob', 'get_execution', { execution_id: execution });
  const getUnknown = await refused(bob, 'bob', 'get_execution', { execution_id: unknownExecution });
  check(getHidden === getUnknown.replaceAll(unknownExecution, execution),
    "bob's get_execution of alice's execution does not read as of an unknown execution", { alice_execution: getHidden, unknown_execution: getUnknown });
  check(getHidden.includes('unknown execution'), "bob's get_execution of alice's execution does not say unknown execution", getHidden);
  check(!getHidden.split('\n').some(line => line.trim() === '42'), "bob's refused get_execution carries alice's output", getHidden);
  result.bob = {
    tools: bobTools.length,
    list_kernels_shows_alice: false,
    execute_on_alice_kernel: onHidden,
    execute_on_unknown_kernel: onUnknown,
    get_execution_of_alice: getHidden,
    get_execution_unknown: getUnknown,
  };

  // A read-only principal is not offered the tools that change things,
  // and calling one anyway is refused.
  const readerTools = await toolNames(reader);
  for (const t of ['execute', 'start_kernel']) {
    check(!readerTools.includes(t), `the read-only principal's tools/list shows ${t}`, readerTools);
  }
  check(readerTools.includes('list_kernels') && readerTools.includes('get_execution'),
    "the read-only principal's tools/list lacks the read tools", readerTools);
  check(readerTools.every(t => aliceTools.includes(t)), "the read-only principal's tools/list has tools alice's lacks", readerTools);
  const readerExecute = await refused(reader, 'reader', 'execute', { kernel, code: '1' });
  check(/execute scope/.test(readerExecute), "the read-only principal's execute refusal does not name the execute scope", readerExecute);
  result.reader = { tools: readerTools.length, lists_execute: false, lists_start_kernel: false, execute: readerExecute };

  // alice shares the kernel with bob for read: he sees it and its output,
  // and still may not run code on it.
  await ok(alice, 'alice', 'share_kernel', { kernel, principal: bobName, access: 'read' });
  const sharedKernels = await kernelIDs(bob, 'bob');
  check(sharedKernels.includes(kernel), "shared for read, bob's list_kernels lacks alice's kernel", sharedKernels);
  const sharedGet = await ok(bob, 'bob', 'get_execution', { execution_id: execution });
  check(sharedGet.structured.execution_id === execution && printed42(sharedGet), "shared for read, bob's get_execution lacks the output 42", sharedGet.parts);
  const sharedExecute = await refused(bob, 'bob', 'execute', { kernel, code: 'x = 0' });
  check(/read only/.test(sharedExecute), "shared for read, bob's execute refusal does not say read only", sharedExecute);
  result.shared_read = { bob_lists_kernel: true, bob_reads_output: sharedGet.parts.slice(1).join('\n'), bob_execute: sharedExecute };

  // An invalid token: HTTP 401 with a WWW-Authenticate challenge, which the
  // SDK surfaces as a StreamableHTTPError with code 401.
  let seen;
  let err;
  try {
    await connect('invalid', 'mcpj_' + '0'.repeat(64), res => { if (!seen) seen = res; });
  } catch (e) {
    err = e;
  }
  check(err !== undefined, 'an invalid token connected');
  check(err instanceof StreamableHTTPError && err.code === 401, 'an invalid token did not fail with HTTP 401 in the SDK', `${err?.constructor?.name}: ${err?.message}`);
  check(seen && seen.status === 401, 'the first response to an invalid token is not 401', seen?.status);
  const challenge = seen.headers.get('www-authenticate');
  check(challenge && /^Bearer\b/i.test(challenge), 'the 401 lacks a WWW-Authenticate: Bearer header', challenge);
  const params = extractWWWAuthenticateParams(seen);
  check(params.error === 'invalid_token', 'the 401 for a refused token does not say error="invalid_token" (RFC 6750)', challenge);
  result.invalid_token = {
    status: seen.status,
    www_authenticate: challenge,
    sdk_parsed: { resource_metadata: params.resourceMetadataUrl?.href ?? null, scope: params.scope ?? null, error: params.error ?? null },
    sdk_error: err.message,
  };

  await ok(alice, 'alice', 'shutdown_kernel', { kernel });

  // With a driver (TestOutsideSDK): it revokes bob while his client is
  // open; his next call must be refused with 401.
  if (process.env.MCPJ_REVOKE_HANDSHAKE === '1') {
    process.stderr.write(`${revokeRequest}\n`);
    const answer = await firstLine(process.stdin);
    check(answer === 'revoked', 'the driver did not answer "revoked"', answer);
    let revokedErr;
    try {
      await bob.listTools(undefined, { timeout: callTimeoutMs });
    } catch (e) {
      revokedErr = e;
    }
    check(revokedErr !== undefined, "bob's open client still lists tools after his token was revoked");
    check(revokedErr instanceof StreamableHTTPError && revokedErr.code === 401,
      "bob's open client after revoke did not fail with HTTP 401", `${revokedErr?.constructor?.name}: ${revokedErr?.message}`);
    result.revoked = { status: revokedErr.code, sdk_error: revokedErr.message };
  }
  result.ok = true;
}

let code = 0;
try {
  await main();
} catch (e) {
  result.failed = e instanceof Mismatch ? e.message : `unexpected: ${e?.stack || e}`;
  process.stderr.write(`check.mjs: FAILED: ${result.failed}\n`);
  code = 1;
}
await Promise.allSettled(clients.map(c => c.close()));
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
process.exit(code);
