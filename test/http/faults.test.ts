/**
 * Socket failures in every phase, on both sides. After each one: the flow is logged exactly once with its id
 * and error type, the error is counted, no socket or flow is left behind, and the next request works.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { flowLog, type Proxy } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';

interface LogLine {
  flowId?: string;
  error?: string;
  msg: string;
  level: number;
}

async function startLoggedProxy(t: TestContext) {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  const started = await startProxy(t, { logger: pino({ level: 'info' }, sink), addons: [flowLog()], responseTimeoutMs: 2000 });
  return { ...started, lines };
}

async function afterFault(t: TestContext, proxy: Proxy, url: string, lines: LogLine[], expectedError: string | RegExp): Promise<void> {
  await waitFor(() => proxy.connections === 0 && proxy.activeFlows === 0, 5000, `no sockets or flows left (connections=${proxy.connections}, flows=${proxy.activeFlows})`);
  const flowLines = lines.filter((line) => line.flowId !== undefined);
  assert.equal(flowLines.length, 1, `exactly one flow line: ${JSON.stringify(lines)}`);
  const errorType = flowLines[0]!.error ?? 'none';
  if (typeof expectedError === 'string') assert.equal(errorType, expectedError);
  else assert.match(errorType, expectedError);
  assert.equal(proxy.stats().flowErrors[errorType as keyof ReturnType<Proxy['stats']>['flowErrors']], 1, 'the error is counted');
  const origin = await startOrigin(t, (_req, res) => res.end('next one works'));
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'next one works');
}

test('client resets after sending part of the request body: the origin request is aborted', async (t) => {
  let originSawAbort = false;
  const origin = await startOrigin(t, (req) => {
    req.on('error', () => undefined);
    req.on('close', () => (originSawAbort = !req.complete));
  });
  const { proxy, port, url, lines } = await startLoggedProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`POST ${origin.url}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789`);
  await waitFor(() => proxy.activeFlows === 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  conn.socket.resetAndDestroy();
  await waitFor(() => originSawAbort, 3000, 'the origin to see the aborted request');
  await afterFault(t, proxy, url, lines, 'client_aborted');
});

test('client resets while waiting for the response: the origin request is aborted', async (t) => {
  let originSawClose = false;
  const origin = await startOrigin(t, (_req, res) => res.on('close', () => (originSawClose = true)));
  const { proxy, port, url, lines } = await startLoggedProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  await waitFor(() => proxy.activeFlows === 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  conn.socket.resetAndDestroy();
  await waitFor(() => originSawClose, 3000, 'the origin to see the client leave');
  await afterFault(t, proxy, url, lines, 'client_aborted');
});

test('client resets mid-response (EPIPE/ECONNRESET on the proxy\'s writes)', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 2);
    res.on('close', () => clearInterval(timer));
  });
  const { proxy, port, url, lines } = await startLoggedProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.waitFor('HTTP/1.1 200');
  conn.socket.resetAndDestroy();
  await afterFault(t, proxy, url, lines, 'client_aborted');
});

test('client resets before sending anything, and after half a request head: no flow, nothing left', async (t) => {
  const { proxy, port, url, lines } = await startLoggedProxy(t);
  const first = await rawConnect(port);
  first.socket.resetAndDestroy();
  const second = await rawConnect(port);
  second.socket.write('GET http://example.test/ HTTP/1.1\r\nHo');
  await new Promise((resolve) => setTimeout(resolve, 30));
  second.socket.resetAndDestroy();
  await waitFor(() => proxy.connections === 0, 3000, 'both connections released');
  assert.deepEqual(lines.filter((line) => line.flowId !== undefined), []);
  const origin = await startOrigin(t, (_req, res) => res.end('next one works'));
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'next one works');
});

test('origin resets before answering → 502 connection_terminated', async (t) => {
  const origin = await startTcpServer(t, (socket) => socket.once('data', () => socket.resetAndDestroy()));
  const { proxy, url, lines } = await startLoggedProxy(t);
  const result = await curl(['-x', url, '-i', `http://127.0.0.1:${origin.port}/`]);
  assert.match(result.stdout, /^HTTP\/1\.1 502 [^]*error=connection_terminated/);
  await afterFault(t, proxy, url, lines, 'connection_terminated');
});

test('origin half-closes without answering → 502', async (t) => {
  const origin = await startTcpServer(t, (socket) => socket.once('data', () => socket.end()));
  const { proxy, url, lines } = await startLoggedProxy(t);
  const result = await curl(['-x', url, '-i', `http://127.0.0.1:${origin.port}/`]);
  assert.match(result.stdout, /^HTTP\/1\.1 502 /);
  await afterFault(t, proxy, url, lines, 'connection_terminated');
});

test('origin resets mid-response → client connection cut, error logged once', async (t) => {
  const origin = await startTcpServer(t, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n');
      socket.write(Buffer.alloc(1000), () => setTimeout(() => socket.resetAndDestroy(), 20));
    });
  });
  const { proxy, port, url, lines } = await startLoggedProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.untilEnd();
  await afterFault(t, proxy, url, lines, /^(http_response_incomplete|connection_terminated)$/);
});

test('origin hangs mid-response → cut after responseTimeoutMs', async (t) => {
  const origin = await startTcpServer(t, (socket) => {
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome'));
  });
  const lines: LogLine[] = [];
  const { proxy, port, url } = await startProxy(t, {
    responseTimeoutMs: 200,
    logger: pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as LogLine), cb()) })),
    addons: [flowLog()],
  });
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = (await conn.untilEnd(3000)).toString();
  assert.ok(text.endsWith('\r\n\r\nsome'), 'the response is cut, not completed');
  await afterFault(t, proxy, url, lines, 'connection_read_timeout');
});

test('tunnel: client resets mid-tunnel → origin side closed; origin resets mid-tunnel → client side closed', async (t) => {
  let originClosed = 0;
  const origin = await startTcpServer(t, (socket) => {
    socket.on('close', () => originClosed++);
    socket.on('end', () => socket.end());
    socket.on('data', (chunk: Buffer) => {
      if (chunk.toString() === 'reset-me') socket.resetAndDestroy();
    });
  });
  const { proxy, port, url, lines } = await startLoggedProxy(t);
  const first = await rawConnect(port);
  first.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await first.waitFor('200 Connection Established\r\n\r\n');
  first.socket.resetAndDestroy();
  await waitFor(() => originClosed === 1, 3000, 'the origin side of the first tunnel to close');

  const second = await rawConnect(port);
  second.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await second.waitFor('200 Connection Established\r\n\r\n');
  second.socket.write('reset-me');
  await second.untilEnd();
  await waitFor(() => proxy.connections === 0 && proxy.activeFlows === 0, 3000, 'everything released');
  const tunnelLines = lines.filter((line) => line.flowId !== undefined);
  assert.equal(tunnelLines.length, 2);
  assert.ok(tunnelLines.every((line) => line.error === 'connection_terminated'), JSON.stringify(tunnelLines));
  const next = await startOrigin(t, (_req, res) => res.end('next one works'));
  assert.equal((await curl(['-x', url, next.url])).stdout, 'next one works');
});
