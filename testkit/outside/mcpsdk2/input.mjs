// Issue 19 (input() as a multi round-trip request) checked from outside:
// the official TypeScript client of MCP 2026-07-28, a client no one on
// this project wrote, answers an execution's input() and getpass() prompts
// through input requests, over Streamable HTTP with a bearer token.
//
//   MCPJ_TOKEN=… node input.mjs http://127.0.0.1:3000/mcp
//
// Checks, in order:
//   auto:    callTool with the SDK's auto-fulfilment: two prompts (input,
//            then getpass) asked through the elicitation/create handler;
//   manual:  allowInputRequired: the input_required result by hand, and
//            the retry with inputResponses and requestState. With
//            MCPJ_RESTART_HANDSHAKE=1 the script writes "input.mjs: restart
//            now" on stderr between the two and waits for "restarted" on
//            stdin (the test restarts the server meanwhile); a retry with
//            other arguments, or an altered state, is refused first;
//   plain:   a client without the elicitation capability gets the older
//            reply (status input_required, send_input).
// Prints one JSON object; exits 1 naming the first check that failed
// (2: bad usage).

import { createInterface } from 'node:readline';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Mismatch, check, clientName, text } from './lib.mjs';

const callTimeoutMs = Number(process.env.MCPJ_CALL_TIMEOUT_MS || 180000);
const restartRequest = 'input.mjs: restart now';

const result = { ok: false, client: clientName, node: process.version };

const url = process.argv[2] || process.env.MCPJ_URL;
const token = process.env.MCPJ_TOKEN;
if (!url || !token) {
  process.stderr.write('usage: MCPJ_TOKEN=… node input.mjs URL (e.g. http://127.0.0.1:3000/mcp)\n');
  process.exit(2);
}

const clients = [];

// connect opens a client; answers, when given, makes it declare
// elicitation and answer each question with the next line (accept).
async function connect(answers, asked) {
  const capabilities = answers ? { elicitation: { form: {} } } : {};
  const client = new Client({ name: 'mcp-jupyter-input-check', version: '1' },
    { capabilities, versionNegotiation: { mode: { pin: '2026-07-28' } } });
  if (answers) {
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push(request.params);
      check(answers.length > 0, 'asked more questions than expected', request.params);
      return { action: 'accept', content: { value: answers.shift() } };
    });
  }
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const reverse = (s) => [...s].reverse().join('');
// prompt is the kernel's prompt a stdin question quotes after the server's
// frame ("... Its prompt: «prompt»"), or undefined when it is not framed so.
const prompt = (message) => {
  const m = /Its prompt: «([\s\S]*)»$/.exec(message ?? '');
  return m ? m[1] : undefined;
};

let failed = null;
try {
  const asked = [];
  const secret = 'pw-Turing-1912';
  const auto = await connect(['Ada', secret], asked);
  result.protocol_version = auto.getNegotiatedProtocolVersion();
  check(result.protocol_version === '2026-07-28', 'negotiated revision', result.protocol_version);

  const started = await auto.callTool({ name: 'start_kernel', arguments: { kernelspec: 'python3' } }, { timeout: callTimeoutMs });
  check(!started.isError, 'start_kernel', text(started));
  const kernel = started.structuredContent?.kernel_id;
  check(typeof kernel === 'string' && kernel.length > 0, 'kernel_id of start_kernel', started.structuredContent);
  result.kernel = kernel;

  // auto: the SDK fulfils both prompts inside one callTool.
  const res = await auto.callTool({ name: 'execute', arguments: { kernel, allow_stdin: true,
    code: "import getpass\nname = input('Name: ')\npw = getpass.getpass('Password: ')\nprint('hello', name, pw[::-1])" } },
  { timeout: callTimeoutMs });
  result.auto = { status: res.structuredContent?.status, asked: asked.map((p) => ({ message: p.message, meta: p._meta, schema: p.requestedSchema })) };
  check(!res.isError && res.structuredContent?.status === 'ok', 'auto: final status', text(res));
  check(text(res).includes(`hello Ada ${reverse(secret)}`), 'auto: the kernel printed both answers', text(res));
  check(!text(res).includes(secret), 'auto: the secret is in the reply', text(res));
  check(asked.length === 2 && prompt(asked[0].message) === 'Name: ' && prompt(asked[1].message) === 'Password: ', 'auto: questions', asked);
  check(asked[0].message.startsWith('Code running in execution ') && asked[1].message.includes('called input() (getpass: the answer is hidden)'),
    'auto: the server frames each question', asked);
  check(asked[0].requestedSchema?.properties?.value?.type === 'string', 'auto: the field', asked[0].requestedSchema);
  check(asked[1]._meta?.['io.mcp-jupyter/sensitive'] === true, 'auto: the password question is marked sensitive', asked[1]);
  check(!asked[0]._meta?.['io.mcp-jupyter/sensitive'], 'auto: the input() question is marked sensitive', asked[0]);

  // manual: the input_required result by hand, then the retry.
  const args = { kernel, allow_stdin: true, code: "word = input('Word: ')\nprint('word is', word[::-1])" };
  const first = await auto.callTool({ name: 'execute', arguments: args }, { timeout: callTimeoutMs, allowInputRequired: true });
  check(first.resultType === 'input_required', 'manual: resultType', first);
  const q = first.inputRequests?.stdin;
  check(q?.method === 'elicitation/create' && prompt(q?.params?.message) === 'Word: ', 'manual: the stdin input request', first.inputRequests);
  check(typeof first.requestState === 'string' && first.requestState.length > 0, 'manual: requestState', first);
  if (process.env.MCPJ_RESTART_HANDSHAKE === '1') {
    process.stderr.write(restartRequest + '\n');
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      if (line.trim() === 'restarted') break;
    }
    rl.close();
    result.restarted = true;
  }
  // A retry with other arguments, or with an altered state, is refused and sends nothing.
  const answer = { stdin: { action: 'accept', content: { value: 'wrong' } } };
  const other = await auto.callTool({ name: 'execute', arguments: { ...args, code: args.code + '\n' },
    inputResponses: answer, requestState: first.requestState }, { timeout: callTimeoutMs, allowInputRequired: true });
  check(other.isError && text(other).includes('belongs to another call'), 'manual: a retry with other arguments is refused', other);
  const [body, mac] = first.requestState.split('.');
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url')), i: 1 })).toString('base64url') + '.' + mac;
  const tampered = await auto.callTool({ name: 'execute', arguments: args, inputResponses: answer, requestState: forged },
    { timeout: callTimeoutMs, allowInputRequired: true });
  check(tampered.isError && text(tampered).includes('not minted by this server or was altered'), 'manual: an altered requestState is refused', tampered);
  const retried = await auto.callTool({ name: 'execute', arguments: args,
    inputResponses: { stdin: { action: 'accept', content: { value: 'kiwi' } } }, requestState: first.requestState },
  { timeout: callTimeoutMs, allowInputRequired: true });
  result.manual = { status: retried.structuredContent?.status };
  check(!retried.isError && retried.structuredContent?.status === 'ok', 'manual: status after the retry', retried);
  check(text(retried).includes(`word is ${reverse('kiwi')}`), 'manual: the kernel printed the answer', text(retried));

  // plain: no elicitation capability, the older reply.
  const plain = await connect(null, null);
  const waiting = await plain.callTool({ name: 'execute', arguments: { kernel, allow_stdin: true,
    code: "v = input('Plain: ')\nprint('plain got', v)" } }, { timeout: callTimeoutMs });
  check(waiting.resultType !== 'input_required' && waiting.structuredContent?.status === 'input_required' &&
    waiting.structuredContent?.prompt === 'Plain: ' && text(waiting).includes('send_input'), 'plain: the older reply', waiting);
  const sent = await plain.callTool({ name: 'send_input', arguments: { execution_id: waiting.structuredContent.execution_id,
    value: 'fig', wait_s: 30 } }, { timeout: callTimeoutMs });
  check(sent.structuredContent?.status === 'ok' && text(sent).includes('plain got fig'), 'plain: send_input', text(sent));
  result.plain = { status: sent.structuredContent?.status };
  result.ok = true;
} catch (err) {
  failed = err instanceof Mismatch ? err.message : `${err?.name || 'Error'}: ${err?.message || err}`;
  result.failed = failed;
}
for (const c of clients) {
  try { await c.close(); } catch { /* closing is best effort */ }
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(failed ? 1 : 0);
