/**
 * Response splitting through hook-supplied heads: a CR/LF in a header value or reason phrase must never reach the
 * wire as a second header or response. Node's ServerResponse checks what it writes; the raw head writer (CONNECT
 * refusals, answers to upgrades, the 101) must check the same, and every path fails the flow closed with a 500.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { HeaderList, type Addon } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy } from '../helpers/servers.js';

const INJECTED = 'x\r\nX-Injected: yes';

const badHeads: Array<{ name: string; reason?: string; headers: string[] }> = [
  { name: 'CR/LF in a field value', headers: ['X-Note', INJECTED] },
  { name: 'CR/LF in a field name', headers: ['X-Note\r\nX-Injected', 'yes'] },
  { name: 'NUL in a field value', headers: ['X-Note', 'a\0b'] },
  { name: 'CR/LF in the reason phrase', reason: 'Denied\r\nX-Injected: yes', headers: [] },
];

/** An origin that switches to WebSocket for any upgrade request and then echoes nothing. */
async function startUpgradingOrigin(t: TestContext): Promise<number> {
  const server = createServer();
  // Upgraded sockets leave the server's bookkeeping, so closeAllConnections() does not reach them.
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (_req, socket: Duplex) => {
    upgraded.add(socket);
    socket.on('error', () => socket.destroy());
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of upgraded) socket.destroy();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

function assertClosed500(text: string): void {
  assert.match(text, /^HTTP\/1\.1 500 Internal Server Error\r\n/, text);
  assert.match(text, /Proxy-Status: getaway; error=proxy_internal_error/);
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  assert.doesNotMatch(head, /^X-Injected/im, 'the injected field reached the wire');
  assert.equal((text.match(/^HTTP\/1\.1 /gm) ?? []).length, 1);
}

for (const bad of badHeads) {
  const response = () => ({ status: 403, ...(bad.reason ? { reason: bad.reason } : {}), headers: new HeaderList(bad.headers) });

  test(`response splitting, CONNECT refusal from the connect hook: ${bad.name} → 500`, async (t) => {
    const addon: Addon = { name: 'deny', connect(flow) {
      flow.action = 'deny';
      flow.response = response();
    } };
    const { port, proxy } = await startProxy(t, { addons: [addon] });
    const conn = await rawConnect(port);
    conn.socket.write('CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n');
    assertClosed500((await conn.untilEnd()).toString('latin1'));
    assert.equal((await curl(['-x', proxy.url, '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:1/'])).stdout, '502', 'still serving');
  });

  test(`response splitting, answer to an upgrade from requestHeaders: ${bad.name} → 500`, async (t) => {
    const { port } = await startProxy(t, { addons: [{ name: 'answer', requestHeaders(flow) {
      flow.response = response();
    } }] });
    const conn = await rawConnect(port);
    conn.socket.write('GET http://example.test/ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    assertClosed500((await conn.untilEnd()).toString('latin1'));
  });

  test(`response splitting, the 101 changed by responseHeaders: ${bad.name} → 500`, async (t) => {
    const originPort = await startUpgradingOrigin(t);
    const { port } = await startProxy(t, { addons: [{ name: 'edit', responseHeaders(flow) {
      for (let i = 0; i < bad.headers.length; i += 2) flow.response!.headers.append(bad.headers[i]!, bad.headers[i + 1]!);
      if (bad.reason !== undefined) flow.response!.reason = bad.reason;
    } }] });
    const conn = await rawConnect(port);
    conn.socket.write(`GET http://127.0.0.1:${originPort}/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    assertClosed500((await conn.untilEnd()).toString('latin1'));
  });

  test(`response splitting, a plain request answered by requestHeaders: ${bad.name} → 500`, async (t) => {
    const origin = await startOrigin(t, (_req, res) => res.end('ok'));
    const { port } = await startProxy(t, { addons: [{ name: 'answer', requestHeaders(flow) {
      flow.response = response();
    } }] });
    const conn = await rawConnect(port);
    conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    const text = await conn.waitFor('\r\n\r\n');
    conn.socket.destroy();
    assertClosed500(text);
  });
}

test('a responseHeaders hook that throws on a 101 fails the flow closed (500), the proxy still serves', async (t) => {
  const originPort = await startUpgradingOrigin(t);
  const { port, proxy } = await startProxy(t, { addons: [{ name: 'throws', responseHeaders() {
    throw new Error('hook bug');
  } }] });
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://127.0.0.1:${originPort}/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
  const text = (await conn.untilEnd()).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 500 /, text);
  assert.equal((await curl(['-x', proxy.url, '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:1/'])).stdout, '502', 'still serving');
});
