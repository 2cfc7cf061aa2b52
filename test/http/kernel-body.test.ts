/**
 * The rest of a large plain-HTTP response body of known length is moved by the kernel, origin socket to client socket
 * (http/origin-exchange.ts's handBodyToKernel, tunnel/kernel-splice.ts's takeBody): what arrives must be exactly the
 * body, both connections must stay usable for the next request, and every way it can end early (origin closes,
 * origin stalls, client leaves) must fail the response as the JavaScript copy does, with the proxy still serving.
 * Concurrent slow clients, tapped flows and chunked bodies are in response-integrity.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Agent, request, type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import type { HttpFlow } from '../../src/index.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';
import { pattern, sha256, TUNNEL_COPIES } from '../helpers/tunnel-copies.js';

const MiB = 1024 * 1024;

interface Got {
  status: number;
  length: number;
  sha256: string;
  ms: number;
}

function get(proxyPort: number, url: string, agent: Agent | undefined): Promise<Got> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Without an agent of its own, a connection per request (Node 20's global agent would keep it open).
    const req = request({ host: '127.0.0.1', port: proxyPort, path: url, agent: agent ?? false }, (res: IncomingMessage) => {
      const hash = createHash('sha256');
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length, sha256: hash.digest('hex'), ms: Date.now() - started }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('bodies of many sizes, over one keep-alive client connection and one pooled origin connection: every byte, promptly, each moved by the kernel', { timeout: 60_000 }, async (t) => {
  // Sizes around the pipe (1 MiB) and the handover threshold (128 KiB), so the body's end falls at every kind of
  // boundary: a transfer whose last read ended a poll turn once waited for bytes that would never come.
  const sizes = [128 * 1024 + 1, 300_000, MiB, MiB + 1, 2 * MiB - 1, 3 * MiB, 4 * MiB + 4096, 8 * MiB, 16 * MiB + 7, 33 * MiB];
  const bodies = sizes.map((size, i) => pattern(size, i));
  const origin = await startOrigin(t, (req, res) => {
    const body = bodies[Number(req.url!.slice(1))]!;
    res.writeHead(200, { 'Content-Length': body.length });
    res.end(body);
  });
  // A stalled transfer would only end when the origin closes its idle connection: make that far beyond the test's bound.
  origin.server.keepAliveTimeout = 60_000;
  const bytes: number[] = [];
  const { proxy, port } = await startProxy(t, { addons: [{ name: 'count', response: (flow: HttpFlow) => void bytes.push(flow.bytes.responseBody) }] });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  for (let round = 0; round < 2; round++) {
    for (const [i, body] of bodies.entries()) {
      const got = await get(port, `${origin.url}/${i}`, agent);
      assert.equal(got.status, 200);
      assert.equal(got.length, body.length, `body ${i}: length`);
      assert.equal(got.sha256, sha256(body), `body ${i}: content`);
      assert.ok(got.ms < 5000, `body ${i} (${body.length} bytes) took ${got.ms} ms`);
    }
  }
  // Bodies of a MiB or more always have 128 KiB left after the first read; the smaller ones may not.
  assert.ok(proxy.stats().bodiesInKernel >= 2 * sizes.filter((size) => size >= MiB).length, `moved by the kernel: ${proxy.stats().bodiesInKernel}`);
  await waitFor(() => bytes.length === 2 * sizes.length, 3000, 'every flow to end');
  assert.deepEqual(bytes, [...sizes, ...sizes], 'the flow counts every body byte');
});

test('a body whose rest is whole pipe-fulls ends with its last byte, without waiting for more from the origin', { timeout: 30_000 }, async (t) => {
  // The head and 64 KiB come first and alone; then exactly 4 MiB in one write, which the kernel reads a pipe-full
  // (1 MiB) at a time, so the last read ends the body exactly as it ends a poll turn. That transfer once waited for
  // origin bytes that would never come; the origin keeps its connection open here, so it would wait for ever.
  const rest = pattern(4 * MiB, 5);
  const first = pattern(64 * 1024, 6);
  const origin = await startTcpServer(t, (socket) => {
    socket.on('data', () => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${first.length + rest.length}\r\n\r\n`);
      socket.write(first);
      setTimeout(() => socket.write(rest), 50);
    });
  });
  const { proxy, port } = await startProxy(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  for (let i = 0; i < 5; i++) {
    const got = await Promise.race([
      get(port, `http://127.0.0.1:${origin.port}/${i}`, agent),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`response ${i} stalled`)), 3000)),
    ]);
    assert.equal(got.sha256, sha256(Buffer.concat([first, rest])), `response ${i}`);
  }
  assert.equal(proxy.stats().bodiesInKernel, 5);
});

test('small bodies, kernelSplice: false, and responses whose framing the client gets differently are copied in JavaScript', async (t) => {
  const big = pattern(2 * MiB, 7);
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/small') res.end('small body');
    else {
      res.writeHead(200, { 'Content-Length': big.length });
      res.end(big);
    }
  });
  const cases = [
    { name: 'a small body', options: {}, path: '/small' },
    { name: 'kernelSplice: false', options: { kernelSplice: false }, path: '/big' },
    // A hook that drops Content-Length makes node:http chunk the body towards the client: the bytes must be framed.
    { name: 'a body the client gets chunked', options: { addons: [{ name: 'drop-length', responseHeaders: (flow: HttpFlow) => void flow.response!.headers.delete('content-length') }] }, path: '/big' },
  ];
  for (const { name, options, path } of cases) {
    const { proxy, port } = await startProxy(t, options);
    const got = await get(port, `${origin.url}${path}`, undefined);
    assert.equal(got.status, 200, name);
    assert.equal(got.sha256, sha256(path === '/small' ? Buffer.from('small body') : big), name);
    assert.equal(proxy.stats().bodiesInKernel, 0, name);
  }
});

for (const copy of TUNNEL_COPIES) {
  test(`${copy.name}: an origin that closes mid-body: the client gets a broken response, never a complete-looking one, and the proxy serves on`, { timeout: 30_000 }, async (t) => {
    const origin = await startTcpServer(t, (socket) => {
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${8 * MiB}\r\n\r\n`);
        socket.write(pattern(2 * MiB, 1), () => setTimeout(() => socket.destroy(), 50));
      });
    });
    const healthy = await startOrigin(t, (_req, res) => res.end('still here'));
    const errors: string[] = [];
    const { proxy, port } = await startProxy(t, { ...copy.options, addons: [{ name: 'errors', error: (flow) => void errors.push(flow.error!.type) }] });
    const outcome = await new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: `http://127.0.0.1:${origin.port}/` }, (res) => {
        let length = 0;
        res.on('data', (chunk: Buffer) => (length += chunk.length));
        res.on('end', () => resolve(`complete after ${length}`));
        res.on('error', (err) => resolve(`broken: ${(err as NodeJS.ErrnoException).code}`));
        res.on('aborted', () => resolve('broken: aborted'));
      });
      req.on('error', (err) => resolve(`broken: ${(err as NodeJS.ErrnoException).code}`));
      req.end();
    });
    assert.match(outcome, /^broken/);
    assert.equal(proxy.stats().bodiesInKernel, copy.inKernel ? 1 : 0);
    await waitFor(() => errors.length === 1, 3000, 'the error hook');
    assert.equal(errors[0], 'connection_terminated');
    const next = await get(port, `${healthy.url}/`, undefined);
    assert.equal(next.status, 200);
    await waitFor(() => proxy.connections === 0, 3000, 'client connections closed');
  });
}

for (const copy of TUNNEL_COPIES) {
  test(`${copy.name}: the response timeout cuts an origin silent mid-body, and spares one that is slow but sending`, { timeout: 30_000 }, async (t) => {
    // One origin per behaviour: a pooled connection from the first must not carry the second request.
    const origin = (trickle: boolean) => startTcpServer(t, (socket) => {
      socket.once('data', () => {
        const total = 4 * MiB;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
        socket.write(pattern(MiB, 2));
        if (!trickle) return; // then silence
        let sent = MiB;
        const timer = setInterval(() => {
          socket.write(pattern(256 * 1024, 3));
          sent += 256 * 1024;
          if (sent >= total) clearInterval(timer);
        }, 100);
        socket.on('close', () => clearInterval(timer));
      });
    });
    const trickling = await origin(true);
    const silentOrigin = await origin(false);
    const errors: string[] = [];
    const { proxy, port } = await startProxy(t, { ...copy.options, responseTimeoutMs: 400, addons: [{ name: 'errors', error: (flow) => void errors.push(flow.error!.type) }] });
    const slow = await get(port, `http://127.0.0.1:${trickling.port}/`, undefined);
    assert.equal(slow.length, 4 * MiB, 'a body that keeps coming, 100 ms apart, is not cut by a 400 ms timeout');
    assert.ok(slow.ms >= 1000, `took ${slow.ms} ms`);
    const started = Date.now();
    const silent = await new Promise<string>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: `http://127.0.0.1:${silentOrigin.port}/` }, (res) => {
        res.resume();
        res.on('end', () => resolve('complete'));
        res.on('error', () => resolve('broken'));
        res.on('aborted', () => resolve('broken'));
      });
      req.on('error', () => resolve('broken'));
      req.end();
    });
    assert.equal(silent, 'broken');
    assert.ok(Date.now() - started < 5000, 'cut within a few timeouts');
    assert.equal(proxy.stats().bodiesInKernel, copy.inKernel ? 2 : 0);
    await waitFor(() => errors.length === 1, 3000, 'the error hook');
    assert.equal(errors[0], 'connection_read_timeout');
  });
}

test('a client that leaves mid-body: the origin connection is closed, nothing leaks, and the proxy serves on', { timeout: 30_000 }, async (t) => {
  let originClosed = false;
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/small') return void res.end('small');
    res.on('close', () => (originClosed = true));
    res.writeHead(200, { 'Content-Length': 256 * MiB });
    const block = pattern(MiB, 4);
    let sent = 0;
    const more = (): void => {
      while (sent < 256 * MiB && !res.destroyed) {
        sent += block.length;
        if (!res.write(block)) return void res.once('drain', more);
      }
    };
    more();
  });
  const { proxy, port } = await startProxy(t);
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `${origin.url}/big` }, (res) => {
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        length += chunk.length;
        if (length > 4 * MiB) {
          req.destroy();
          resolve();
        }
      });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    req.end();
  });
  assert.equal(proxy.stats().bodiesInKernel, 1);
  await waitFor(() => originClosed, 5000, 'the origin connection to be closed');
  await waitFor(() => proxy.connections === 0, 5000, 'the client connection to be released');
  const next = await get(port, `${origin.url}/small`, undefined);
  assert.equal(next.status, 200);
});
