// What the outside checks of this directory share (input.mjs, policy.mjs,
// subs.mjs, suite.mjs): the failed-check error, the text of a tool result,
// and loading one of the two official MCP TypeScript clients.

import { readFileSync } from 'node:fs';

const here = new URL('.', import.meta.url);

// Mismatch is a check that failed; the scripts report its message as is
// (anything else thrown is unexpected and reported with its name or stack).
export class Mismatch extends Error {}

// check throws a Mismatch naming what, and detail (JSON unless a string),
// unless cond holds.
export function check(cond, what, detail) {
  if (!cond) {
    throw new Mismatch(`${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}

// text is the text parts of a tool result, one per line.
export function text(res) {
  return (res.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

function installedVersion(packageJSON) {
  return JSON.parse(readFileSync(packageJSON)).version;
}

// clientName is "@modelcontextprotocol/client <installed version>".
export const clientName = `@modelcontextprotocol/client ${installedVersion(new URL('./node_modules/@modelcontextprotocol/client/package.json', here))}`;

// loadSDK loads one of the two official clients: sdk "1" is
// @modelcontextprotocol/sdk (../mcpsdk, MCP 2025-11-25), "2"
// @modelcontextprotocol/client (this directory, 2026-07-28). It returns
// Client, both transports, name ("<package> <version>") and onUpdated(client,
// f), which calls f(uri) on each notifications/resources/updated.
export async function loadSDK(sdk) {
  if (sdk === '1') {
    const base = new URL('../mcpsdk/node_modules/@modelcontextprotocol/sdk/', here);
    const esm = new URL('dist/esm/', base);
    const { Client } = await import(new URL('client/index.js', esm));
    const { StreamableHTTPClientTransport } = await import(new URL('client/streamableHttp.js', esm));
    const { StdioClientTransport } = await import(new URL('client/stdio.js', esm));
    const { ResourceUpdatedNotificationSchema } = await import(new URL('types.js', esm));
    return {
      Client, StreamableHTTPClientTransport, StdioClientTransport,
      name: `@modelcontextprotocol/sdk ${installedVersion(new URL('package.json', base))}`,
      onUpdated: (client, f) => client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => f(n.params.uri)),
    };
  }
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const { StdioClientTransport } = await import('@modelcontextprotocol/client/stdio');
  return {
    Client, StreamableHTTPClientTransport, StdioClientTransport, name: clientName,
    onUpdated: (client, f) => client.setNotificationHandler('notifications/resources/updated', (n) => f(n.params.uri)),
  };
}
