import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocketServer } from 'ws';
import type { HttpFlow } from '../../src/index.js';
import { rawConnect } from '../helpers/clients.js';
import { startProxy, startTcpServer, waitFor } from '../helpers/servers.js';
import { assertCopiedBy, TUNNEL_COPIES } from '../helpers/tunnel-copies.js';

/** A real WebSocket server (the ws package) that echoes every message. */
async function startWebSocketEcho(t: TestContext): Promise<number> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

/** A masked client text frame (RFC 6455 §5.2), short payloads only. */
function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

function upgradeRequest(port: number, protocol = 'websocket'): string {
  return (
    `GET http://127.0.0.1:${port}/chat HTTP/1.1\r\n` +
    `Host: 127.0.0.1:${port}\r\n` +
    `Upgrade: ${protocol}\r\n` +
    `Connection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\n` +
    `Sec-WebSocket-Version: 13\r\n\r\n`
  );
}

for (const copy of TUNNEL_COPIES) {
  test(`${copy.name}: WebSocket over an absolute-form Upgrade: 101 relayed, frames echoed both ways, flow recorded`, async (t) => {
    const port = await startWebSocketEcho(t);
    const flows: HttpFlow[] = [];
    const started = await startProxy(t, { ...copy.options, addons: [{ name: 'watch', response: (flow) => void flows.push(flow) }] });
    const conn = await rawConnect(started.port);
    conn.socket.write(upgradeRequest(port));
    const head = await conn.waitFor('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${ACCEPT.replace(/[+/=]/g, '\\$&')}\r\n`));
    assert.match(head, /\r\nUpgrade: websocket\r\n/i);
    assert.match(head, /\r\nConnection: Upgrade\r\n/i);
    assert.match(head, /\r\nVia: 1\.1 getaway-[0-9a-f]{8}\r\n/);

    conn.socket.write(clientTextFrame('hello through getaway'));
    const all = await conn.waitFor('hello through getaway');
    const frame = Buffer.from(all, 'latin1').subarray(head.length);
    assert.deepEqual([...frame.subarray(0, 2)], [0x81, 21], 'an unmasked text frame from the server');

    conn.socket.end(Buffer.from([0x88, 0x80, 0, 0, 0, 0])); // close frame
    await conn.untilEnd();
    await waitFor(() => flows.length === 1, 3000, 'the response hook after the upgraded connection closed');
    assert.equal(flows[0]!.isUpgrade, true);
    assert.equal(flows[0]!.response?.status, 101);
    assert.ok(flows[0]!.bytes.requestBody >= 27 && flows[0]!.bytes.responseBody >= 23, JSON.stringify(flows[0]!.bytes));
    await waitFor(() => started.proxy.connections === 0, 3000, 'sockets released');
    assertCopiedBy(started.proxy, copy);
  });
}

test('an origin that declines the upgrade gets its answer relayed, then the connection closes', async (t) => {
  const origin = await startTcpServer(t, (socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\nWWW-Authenticate: Bearer\r\n\r\nlog in'));
  });
  const started = await startProxy(t);
  const conn = await rawConnect(started.port);
  conn.socket.write(upgradeRequest(origin.port));
  const text = (await conn.untilEnd()).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 401 Unauthorized\r\n/);
  assert.match(text, /WWW-Authenticate: Bearer/);
  assert.match(text, /Connection: close/);
  assert.ok(text.endsWith('\r\n\r\nlog in'), text);
});

test('a declined upgrade runs responseHeaders like any response: the hook sees the refusal and may change it', async (t) => {
  const origin = await startTcpServer(t, (socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno'));
  });
  const seen: number[] = [];
  const started = await startProxy(t, { addons: [{ name: 'edit', responseHeaders(flow) {
    seen.push(flow.response!.status);
    flow.response!.headers.set('X-Seen-Refusal', 'yes');
  } }] });
  const conn = await rawConnect(started.port);
  conn.socket.write(upgradeRequest(origin.port));
  const text = (await conn.untilEnd()).toString('latin1');
  assert.deepEqual(seen, [426]);
  assert.match(text, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
  assert.match(text, /\r\nX-Seen-Refusal: yes\r\n/);
});

test('an origin that switches to a protocol the client did not ask for → 502 http_upgrade_failed', async (t) => {
  const origin = await startTcpServer(t, (socket) => {
    socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n'));
    socket.on('end', () => socket.end());
  });
  const started = await startProxy(t);
  const conn = await rawConnect(started.port);
  conn.socket.write(upgradeRequest(origin.port));
  const text = (await conn.untilEnd()).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  assert.match(text, /Proxy-Status: getaway; error=http_upgrade_failed/);
  await waitFor(() => started.proxy.connections === 0, 3000, 'sockets released');
});

test('a responseHeaders hook that throws synchronously on a 101 fails the flow closed: 500, error hook, origin closed, proxy serving', async (t) => {
  const port = await startWebSocketEcho(t);
  const errors: string[] = [];
  const started = await startProxy(t, {
    addons: [{
      name: 'breaks-on-101',
      responseHeaders(flow) {
        if (flow.response!.status === 101) throw new Error('no websockets today');
      },
      error: (flow) => void errors.push(flow.error!.type),
    }],
  });
  const conn = await rawConnect(started.port);
  conn.socket.write(upgradeRequest(port));
  const text = (await conn.untilEnd()).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 500 /);
  assert.match(text, /error=proxy_internal_error/);
  await waitFor(() => errors.length === 1, 3000, 'the error hook');
  assert.deepEqual(errors, ['proxy_internal_error']);
  await waitFor(() => started.proxy.connections === 0, 3000, 'the origin connection released');
  const again = await rawConnect(started.port);
  again.socket.write('GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n');
  assert.match(await again.waitFor('\r\n\r\n'), /^HTTP\/1\.1 502 /);
  again.socket.destroy();
});
