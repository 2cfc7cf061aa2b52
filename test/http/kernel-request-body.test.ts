/**
 * The rest of a large plain-HTTP request body of known length is moved by the kernel, client socket to origin socket
 * (http/origin-exchange.ts's sendRequestBodyByKernel, tunnel/kernel-splice.ts's takeBody). The origin must get
 * exactly the body, whatever node:http had already parsed of it; the client's connection closes after the response
 * (node:http's parser never saw the bytes, so it cannot find the next request); and every way it can end early
 * (the client leaves or goes quiet, the origin answers first) must end the flow as the JavaScript copy does, with
 * the proxy still serving.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { HttpFlow, ProxyOptions } from '../../src/index.js';
import { curl } from '../helpers/clients.js';
import { startOrigin, startProxy, waitFor, type StartedOrigin } from '../helpers/servers.js';
import { pattern, sha256, TUNNEL_COPIES } from '../helpers/tunnel-copies.js';

const MiB = 1024 * 1024;

/** An origin that reads each request body whole and answers with its length and SHA-256. */
function digestingOrigin(t: TestContext): Promise<StartedOrigin> {
  return startOrigin(t, (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => res.end(`${length} ${hash.digest('hex')}`));
  });
}

interface Posted {
  status: number;
  body: string;
  connection: string | undefined;
}

function post(proxyPort: number, url: string, body: Buffer, agent: Agent | false, headers: Record<string, string> = {}): Promise<Posted> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, method: 'POST', path: url, agent, headers: { 'content-length': String(body.length), ...headers } }, (res: IncomingMessage) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, connection: res.headers.connection }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Sends `preamble` (a PROXY protocol header, or nothing), a POST head for `url` and the first `first` bytes of
 * `body` in one write, the rest 50 ms later with FIN; resolves with everything the proxy answered once it closed.
 */
function rawUpload(t: TestContext, proxyPort: number, url: URL, body: Buffer, first: number, preamble = ''): Promise<string> {
  const socket = connect(proxyPort, '127.0.0.1');
  t.after(() => socket.destroy());
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  const head = `${preamble}POST ${url.href} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${body.length}\r\n\r\n`;
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body.subarray(0, first)]));
  setTimeout(() => socket.end(body.subarray(first)), 50);
  return new Promise((resolve) => socket.once('close', () => resolve(answer)));
}

async function proxyCounting(t: TestContext, options: ProxyOptions = {}): Promise<{ port: number; requestBodies: () => number; flows: HttpFlow[]; connections: () => number }> {
  const flows: HttpFlow[] = [];
  const { proxy, port } = await startProxy(t, { ...options, addons: [...(options.addons ?? []), { name: 'flows', response: (flow: HttpFlow) => void flows.push(flow), error: (flow) => void flows.push(flow as HttpFlow) }] });
  return { port, requestBodies: () => proxy.stats().requestBodiesInKernel, flows, connections: () => proxy.connections };
}

test('uploads of many sizes reach the origin whole, and those moved by the kernel are answered with Connection: close', { timeout: 60_000 }, async (t) => {
  // Around the handover threshold (128 KiB) and the pipe (1 MiB), so the body's end falls at every kind of boundary.
  const sizes = [128 * 1024 + 1, 300_000, MiB, MiB + 1, 3 * MiB, 8 * MiB + 7, 33 * MiB];
  const origin = await digestingOrigin(t);
  const proxy = await proxyCounting(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  for (const [i, size] of sizes.entries()) {
    const body = pattern(size, i);
    const before = proxy.requestBodies();
    const got = await post(proxy.port, `${origin.url}/${i}`, body, agent);
    assert.equal(got.status, 200);
    assert.equal(got.body, `${size} ${sha256(body)}`, `body ${i} (${size} bytes) as the origin read it`);
    // node:http cannot find the next request after bytes it did not parse; a body it parsed whole keeps the connection.
    assert.equal(got.connection, proxy.requestBodies() > before ? 'close' : 'keep-alive', `body ${i}: Connection`);
  }
  // Bodies of a MiB or more always have 128 KiB left when the exchange starts; smaller ones may have been parsed.
  assert.ok(proxy.requestBodies() >= sizes.filter((size) => size >= MiB).length, `moved by the kernel: ${proxy.requestBodies()}`);
  await waitFor(() => proxy.flows.length === sizes.length, 3000, 'every flow to end');
  assert.deepEqual(
    proxy.flows.map((flow) => flow.bytes.requestBody),
    sizes,
    'the flow counts every body byte',
  );
  await waitFor(() => proxy.connections() === 0, 3000, 'the client connections closed');
});

test('a head and the start of its body in one write: the bytes node:http already parsed go first', { timeout: 30_000 }, async (t) => {
  const origin = await digestingOrigin(t);
  const proxy = await proxyCounting(t);
  const body = pattern(4 * MiB, 9);
  const answer = await rawUpload(t, proxy.port, new URL(`${origin.url}/`), body, 200_000);
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.match(answer, /\r\nConnection: close\r\n/i);
  assert.ok(answer.endsWith(`${body.length} ${sha256(body)}`), answer.slice(-200));
  assert.equal(proxy.requestBodies(), 1);
});

test('curl with Expect: 100-continue: the origin\'s 100 goes out, then the body, by the kernel', { timeout: 30_000 }, async (t) => {
  const origin = await digestingOrigin(t);
  const proxy = await proxyCounting(t);
  const dir = await mkdtemp(join(tmpdir(), 'getaway-upload-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const body = pattern(6 * MiB, 3);
  await writeFile(join(dir, 'body'), body);
  const result = await curl(['-x', `http://127.0.0.1:${proxy.port}`, '-H', 'Expect: 100-continue', '--data-binary', `@${join(dir, 'body')}`, `${origin.url}/`]);
  assert.equal(result.stdout, `${body.length} ${sha256(body)}`);
  assert.equal(proxy.requestBodies(), 1);
});

test('small, chunked and tapped bodies, and kernelSplice: false, are copied in JavaScript and keep the connection alive', { timeout: 30_000 }, async (t) => {
  const origin = await digestingOrigin(t);
  const body = pattern(2 * MiB, 5);
  const cases: Array<{ name: string; options: ProxyOptions; size: number; headers?: Record<string, string> }> = [
    { name: 'a small body', options: {}, size: 1000 },
    { name: 'kernelSplice: false', options: { kernelSplice: false }, size: body.length },
    { name: 'a tapped body', options: { addons: [{ name: 'tap', requestHeaders: (flow: HttpFlow) => void flow.tapRequestBody({ data: () => undefined }) }] }, size: body.length },
  ];
  for (const { name, options, size } of cases) {
    const proxy = await proxyCounting(t, options);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const sent = body.subarray(0, size);
    for (let i = 0; i < 2; i++) {
      const got = await post(proxy.port, `${origin.url}/`, sent, agent);
      assert.equal(got.body, `${size} ${sha256(sent)}`, name);
      assert.notEqual(got.connection, 'close', name);
    }
    assert.equal(proxy.requestBodies(), 0, name);
    assert.equal(proxy.connections(), 1, `${name}: one client connection for both`);
  }
  // Chunked: no length to count by.
  const proxy = await proxyCounting(t);
  const got = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxy.port, method: 'POST', path: `${origin.url}/`, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.write(body.subarray(0, MiB));
    req.end(body.subarray(MiB));
  });
  assert.equal(got, `${body.length} ${sha256(body)}`);
  assert.equal(proxy.requestBodies(), 0);
});

test('a client that leaves mid-body: the flow fails client_aborted, the origin connection closes, and the proxy serves on', { timeout: 30_000 }, async (t) => {
  let originSawAbort = false;
  const origin = await startOrigin(t, (req, res) => {
    req.on('data', () => undefined);
    req.on('aborted', () => (originSawAbort = true));
    req.on('end', () => res.end('whole'));
  });
  const proxy = await proxyCounting(t);
  const socket = connect(proxy.port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`POST ${origin.url}/ HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nContent-Length: ${16 * MiB}\r\n\r\n`);
  socket.write(pattern(2 * MiB, 1));
  await waitFor(() => proxy.requestBodies() === 1, 3000, 'the body handed to the kernel');
  await new Promise((resolve) => setTimeout(resolve, 100));
  socket.destroy();
  await waitFor(() => proxy.flows.length === 1, 3000, 'the flow to end');
  assert.equal(proxy.flows[0]!.error?.type, 'client_aborted');
  assert.ok(proxy.flows[0]!.bytes.requestBody >= MiB && proxy.flows[0]!.bytes.requestBody <= 2 * MiB, `counted ${proxy.flows[0]!.bytes.requestBody}`);
  await waitFor(() => originSawAbort, 3000, 'the origin connection to be closed');
  await waitFor(() => proxy.connections() === 0, 3000, 'the client connection released');
  const next = await post(proxy.port, `${origin.url}/`, Buffer.from('next'), false);
  assert.equal(next.body, 'whole');
});

test('a client that goes quiet mid-body is cut after the request body idle timeout; one held back by a slow origin is not', { timeout: 30_000 }, async (t) => {
  // The slow origin reads nothing for 2.5 s, then everything: the client is blocked by it, not idle. The timeout is
  // a second, so that a loaded machine's stalls are not taken for a quiet client.
  const origin = await startOrigin(t, (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.pause();
    setTimeout(() => req.resume(), req.url === '/slow' ? 2500 : 0);
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => res.end(`${length} ${hash.digest('hex')}`));
  });
  const proxy = await proxyCounting(t, { requestBodyIdleTimeoutMs: 1000 });
  const big = pattern(48 * MiB, 2);
  const slow = await post(proxy.port, `${origin.url}/slow`, big, false);
  assert.equal(slow.body, `${big.length} ${sha256(big)}`, 'a body the origin holds back is not cut by a 1 s idle timeout');
  const socket = connect(proxy.port, '127.0.0.1');
  socket.on('error', () => undefined);
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(`POST ${origin.url}/quiet HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nContent-Length: ${4 * MiB}\r\n\r\n`);
  socket.write(pattern(MiB, 3)); // then nothing
  const started = Date.now();
  await closed;
  assert.ok(Date.now() - started < 6000, `cut after ${Date.now() - started} ms`);
  assert.equal(proxy.requestBodies(), 2);
  await waitFor(() => proxy.flows.length === 2, 3000, 'both flows to end');
  assert.equal(proxy.flows[1]!.error?.type, 'http_request_error');
  assert.match(answer, /^HTTP\/1\.1 408 /);
});

for (const copy of TUNNEL_COPIES) {
test(`${copy.name}: an origin that answers before reading the body: the client gets the answer and a closed connection, and the proxy serves on`, { timeout: 30_000 }, async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/next') return void res.end('next');
    res.writeHead(413, { connection: 'close' });
    res.end('too large');
  });
  const proxy = await proxyCounting(t, copy.options);
  const got = await post(proxy.port, `${origin.url}/upload`, pattern(32 * MiB, 4), false).catch((err: NodeJS.ErrnoException) => ({ status: 0, body: err.code ?? '', connection: undefined }));
  // The origin's close with the body unread is a reset, which may discard its answer before the proxy reads it: then
  // a 502, as with the JavaScript copy. The client may also be reset while still writing. Never a hang.
  if (got.status === 413) assert.equal(got.body, 'too large');
  else if (got.status !== 0) assert.equal(got.status, 502);
  await waitFor(() => proxy.connections() === 0, 5000, 'the client connection closed');
  const next = await post(proxy.port, `${origin.url}/next`, Buffer.from('x'), false);
  assert.equal(next.body, 'next');
});
}

test('behind a balancer (PROXY protocol), a head, the start of the body and the rest: the origin gets every byte once', { timeout: 30_000 }, async (t) => {
  const origin = await digestingOrigin(t);
  const proxy = await proxyCounting(t, { acceptProxyProtocol: { trusted: ['127.0.0.1'] } });
  const body = pattern(3 * MiB, 11);
  const answer = await rawUpload(t, proxy.port, new URL(`${origin.url}/`), body, 100_000, `PROXY TCP4 192.0.2.10 127.0.0.1 51000 ${proxy.port}\r\n`);
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.ok(answer.endsWith(`${body.length} ${sha256(body)}`), answer.slice(-200));
  await waitFor(() => proxy.flows.length === 1, 3000, 'the flow to end');
  assert.equal(proxy.flows[0]!.client.remoteAddress, '192.0.2.10');
  assert.equal(proxy.requestBodies(), 1, 'moved by the kernel too');
});
