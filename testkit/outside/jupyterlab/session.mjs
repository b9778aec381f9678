// session.mjs: a Node client of mcp-jupyter's Jupyter Server API with
// JupyterLab's own library, @jupyterlab/services (the one the docs quote,
// docs/frontends.md; check.mjs beside it is the full check).
//
//   npm install @jupyterlab/services@7.6 ws@8
//   MCPJ_URL=http://127.0.0.1:3000 MCPJ_TOKEN=$(cat .mcp-jupyter/mcp-token) node session.mjs
import services from '@jupyterlab/services';
import WebSocket from 'ws';

const { ServerConnection, KernelManager } = services;
const baseUrl = process.env.MCPJ_URL ?? 'http://127.0.0.1:3000';
const serverSettings = ServerConnection.makeSettings({
  baseUrl,
  wsUrl: baseUrl.replace(/^http/, 'ws'),
  token: process.env.MCPJ_TOKEN,
  appendToken: true, // ?token= on the WebSocket, as in a browser
  WebSocket
});
console.log = console.debug = () => {}; // the library's own chatter

const kernels = new KernelManager({ serverSettings });
const kernel = await kernels.startNew({ name: 'python3' });
const future = kernel.requestExecute({ code: 'print(6 * 7)' });
future.onIOPub = msg => {
  if (msg.header.msg_type === 'stream') {
    process.stdout.write(`output: ${msg.content.text}`);
  }
};
const reply = await future.done;
process.stdout.write(`status: ${reply.content.status}, kernel: ${kernel.id}\n`);
await kernel.shutdown();
process.exit(0); // NB: an open kernel connection keeps Node alive
