// Issue 19 (approval policy, --policy) checked from outside: the official
// TypeScript client of MCP 2026-07-28 answers the server's policy
// confirmations through input requests, over Streamable HTTP with a bearer
// token. The server runs with a policy that denies os.system( and asks to
// confirm code containing SECRET (cmd/mcp-jupyter/policy_test.go).
//
//   MCPJ_TOKEN=… node policy.mjs http://127.0.0.1:3000/mcp
//
// Checks, in order:
//   form:    the SDK accepts the confirmation form (one boolean "confirm")
//            and its auto-fulfilment runs the call on yes;
//   no:      declining runs nothing;
//   deny:    a denied call is an isError result naming the rule;
//   manual:  allowInputRequired: the input_required result by hand, the
//            retry with inputResponses.policy and requestState runs it, and
//            the same retry sent again is refused (an answer counts once).
// Prints one JSON object; exits 1 naming the first check that failed
// (2: bad usage).

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Mismatch, check, clientName, text } from './lib.mjs';

const callTimeoutMs = Number(process.env.MCPJ_CALL_TIMEOUT_MS || 180000);
const result = { ok: false, client: clientName, node: process.version };

const url = process.argv[2] || process.env.MCPJ_URL;
const token = process.env.MCPJ_TOKEN;
if (!url || !token) {
  process.stderr.write('usage: MCPJ_TOKEN=… node policy.mjs URL (e.g. http://127.0.0.1:3000/mcp)\n');
  process.exit(2);
}

const asked = [];
let answer = 'yes';
const client = new Client({ name: 'mcp-jupyter-policy-check', version: '1' },
  { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
client.setRequestHandler('elicitation/create', async (request) => {
  asked.push(request.params);
  if (answer === 'yes') return { action: 'accept', content: { confirm: true } };
  return { action: 'decline' };
});

let failed = null;
try {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  result.protocol_version = client.getNegotiatedProtocolVersion();
  check(result.protocol_version === '2026-07-28', 'negotiated revision', result.protocol_version);
  const started = await client.callTool({ name: 'start_kernel', arguments: { kernelspec: 'python3' } }, { timeout: callTimeoutMs });
  check(!started.isError, 'start_kernel', text(started));
  const kernel = started.structuredContent?.kernel_id;
  check(typeof kernel === 'string' && kernel.length > 0, 'kernel_id of start_kernel', started.structuredContent);

  // form: auto-fulfilment, yes.
  const yes = await client.callTool({ name: 'execute', arguments: { kernel, code: "SECRET = 'ts'\nprint('ran', SECRET)" } }, { timeout: callTimeoutMs });
  check(!yes.isError && yes.structuredContent?.status === 'ok' && text(yes).includes('ran ts'), 'form: confirmed call', text(yes));
  check(asked.length === 1, 'form: one question', asked);
  const schema = asked[0].requestedSchema;
  check(schema?.properties?.confirm?.type === 'boolean' && schema?.required?.includes('confirm'), 'form: the confirm field', schema);
  check(asked[0].message.includes('ask-secrets') && asked[0].message.includes("SECRET = 'ts'"), 'form: the message', asked[0].message);
  result.form = { message: asked[0].message, schema };

  // no: declined, nothing runs.
  answer = 'no';
  const no = await client.callTool({ name: 'execute', arguments: { kernel, code: "SECRET = 'declined'" } }, { timeout: callTimeoutMs });
  check(no.isError && text(no).includes('not confirmed') && text(no).includes('Nothing ran'), 'no: declined', text(no));

  // deny
  const deny = await client.callTool({ name: 'execute', arguments: { kernel, code: "import os; os.system('true')" } }, { timeout: callTimeoutMs });
  check(deny.isError && text(deny).includes('refused by rule "no-shell"'), 'deny', text(deny));

  // manual: by hand, then a replay.
  const args = { kernel, code: "SECRET = SECRET + '+manual'\nprint('now', SECRET)" };
  const first = await client.callTool({ name: 'execute', arguments: args }, { timeout: callTimeoutMs, allowInputRequired: true });
  check(first.resultType === 'input_required', 'manual: resultType', first);
  const q = first.inputRequests?.policy;
  check(q?.method === 'elicitation/create' && q?.params?.requestedSchema?.properties?.confirm?.type === 'boolean', 'manual: the policy input request', first.inputRequests);
  const retry = { name: 'execute', arguments: args,
    inputResponses: { policy: { action: 'accept', content: { confirm: true } } }, requestState: first.requestState };
  const ran = await client.callTool(retry, { timeout: callTimeoutMs, allowInputRequired: true });
  check(!ran.isError && text(ran).includes('now ts+manual'), 'manual: the retry runs it', text(ran));
  const replay = await client.callTool(retry, { timeout: callTimeoutMs, allowInputRequired: true });
  check(replay.isError && text(replay).includes('already answered'), 'manual: a replayed answer is refused', text(replay));
  const after = await client.callTool({ name: 'execute', arguments: { kernel, code: "print('still', 'SEC' + 'RET' in globals() and globals()['SEC' + 'RET'])" } }, { timeout: callTimeoutMs });
  check(text(after).includes('still ts+manual'), 'manual: the replay ran nothing', text(after));
  result.ok = true;
} catch (err) {
  failed = err instanceof Mismatch ? err.message : `${err?.name || 'Error'}: ${err?.message || err}`;
  result.failed = failed;
} finally {
  await client.close().catch(() => {});
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(failed ? 1 : 0);
