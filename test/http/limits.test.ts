import assert from 'node:assert/strict';
import { test } from 'node:test';
import { curl, rawConnect, type RawConnection } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';

function status(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
}

test('a request target over maxRequestTargetBytes → 414; just under passes', async (t) => {
  const origin = await startOrigin(t, (req, res) => res.end(String(req.url!.length)));
  const { port, url } = await startProxy(t, { maxRequestTargetBytes: 1000 });
  const base = `${origin.url}/`;
  const conn = await rawConnect(port);
  conn.socket.write(`GET ${base}${'a'.repeat(1001 - base.length)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = (await conn.untilEnd()).toString();
  assert.equal(status(text), 414, text);
  assert.match(text, /Proxy-Status: getaway; error=http_request_error; details="request target longer than 1000 bytes"/);
  const ok = await curl(['-x', url, `${base}${'a'.repeat(1000 - base.length)}`]);
  assert.equal(ok.stdout, String(1000 - origin.url.length));
});

test('a header section over maxHeaderBytes → 431, and far over llhttp\'s ceiling → 431 too', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { port, url } = await startProxy(t, { maxHeaderBytes: 2000 });
  for (const size of [2100, 64 * 1024]) {
    const conn = await rawConnect(port);
    conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(size)}\r\n\r\n`);
    const text = (await conn.untilEnd()).toString();
    assert.equal(status(text), 431, `${size}: ${text}`);
    assert.match(text, /Connection: close/);
  }
  assert.equal((await curl(['-x', url, '-H', `X-Fine: ${'f'.repeat(1500)}`, origin.url])).stdout, 'ok');
});

test('more header fields than maxHeaderCount → 431 (not silently dropped)', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { port } = await startProxy(t, { maxHeaderCount: 20 });
  const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-F${i}: ${i}\r\n`).join('');
  const over = await rawConnect(port);
  over.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n${fields(20)}\r\n`);
  const text = (await over.untilEnd()).toString();
  assert.equal(status(text), 431, text);
  assert.match(text, /more than 20 header fields/);
  const under = await rawConnect(port);
  under.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n${fields(19)}\r\n`);
  await under.waitFor('\r\n\r\nok');
  under.socket.destroy();
});

async function holdConnections(port: number, count: number): Promise<RawConnection[]> {
  const held: RawConnection[] = [];
  for (let i = 0; i < count; i++) held.push(await rawConnect(port));
  return held;
}

test('past maxConnectionsPerClient a new connection gets 503 with Retry-After and closes; a freed slot is reused', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const started = await startProxy(t, { maxConnectionsPerClient: 3 });
  const held = await holdConnections(started.port, 3);
  await waitFor(() => started.proxy.connections === 3);
  const extra = await rawConnect(started.port);
  const text = (await extra.untilEnd()).toString();
  assert.equal(status(text), 503, text);
  assert.match(text, /Retry-After: 1\r\n/);
  assert.match(text, /Proxy-Status: getaway; error=connection_limit_reached; details="more than 3 connections from 127\.0\.0\.1"/);
  held[0]!.socket.destroy();
  await waitFor(() => started.proxy.connections === 2);
  assert.equal((await curl(['-x', started.url, origin.url])).stdout, 'ok');
  for (const conn of held) conn.socket.destroy();
  assert.equal(started.proxy.stats().connectionsRefused, 1);
});

test('past maxConnections (all clients) new connections get 503', async (t) => {
  const started = await startProxy(t, { maxConnections: 2 });
  const held = await holdConnections(started.port, 2);
  await waitFor(() => started.proxy.connections === 2);
  const extra = await rawConnect(started.port, '127.0.0.1');
  assert.match((await extra.untilEnd()).toString(), /^HTTP\/1\.1 503 [^]*more than 2 client connections/);
  for (const conn of held) conn.socket.destroy();
});

test('past maxTunnels a CONNECT gets 503 connection_limit_reached while open tunnels keep working', async (t) => {
  const echo = await startTcpServer(t, (socket) => socket.pipe(socket));
  const started = await startProxy(t, { maxTunnels: 2 });
  const open: RawConnection[] = [];
  for (let i = 0; i < 2; i++) {
    const conn = await rawConnect(started.port);
    conn.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitFor('200 Connection Established\r\n\r\n');
    open.push(conn);
  }
  const third = await rawConnect(started.port);
  third.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = (await third.untilEnd()).toString();
  assert.equal(status(text), 503, text);
  assert.match(text, /Retry-After: 1/);
  assert.match(text, /error=connection_limit_reached/);
  open[0]!.socket.write('still works');
  await open[0]!.waitFor('still works');
  for (const conn of open) conn.socket.destroy();
});
