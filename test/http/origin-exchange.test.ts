/**
 * The direct exchange (src/http/origin-exchange.ts): requests on direct routes, plain or TLS, written by getaway on its
 * own keep-alive pool, the response head parsed by llhttp and the body relayed as counted bytes. Origins here are
 * raw TCP servers, so every byte of framing is the test's choice; clients are raw sockets or curl.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTlsServer } from 'node:tls';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';
import { testCertificates } from '../helpers/test-ca.js';

interface ScriptedOrigin {
  port: number;
  /** Connections accepted so far. */
  connections: () => number;
  /** Request heads received, in order, with the connection (1-based) each came on. */
  requests: Array<{ head: string; connection: number }>;
}

/**
 * A raw origin: for each request head (requests here carry no body) `respond` gets the head, how many requests came
 * before on that connection and the socket, and writes whatever bytes it likes.
 */
async function scriptedOrigin(t: TestContext, respond: (head: string, socket: Socket, onConnection: number) => void): Promise<ScriptedOrigin> {
  let connections = 0;
  const requests: ScriptedOrigin['requests'] = [];
  const { port } = await startTcpServer(t, (socket) => {
    const connection = ++connections;
    let pending = '';
    let count = 0;
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end !== -1; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end + 4);
        pending = pending.slice(end + 4);
        requests.push({ head, connection });
        respond(head, socket, count++);
      }
    });
    socket.on('error', () => {});
  });
  return { port, connections: () => connections, requests };
}

/** The data and trailer section of a chunked body as the client received it. */
function dechunk(body: string): { data: string; trailers: string } {
  let data = '';
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    rest = rest.slice(lineEnd + 2);
    if (size === 0) return { data, trailers: rest.slice(0, -2) };
    data += rest.slice(0, size);
    rest = rest.slice(size + 2);
  }
}

function get(url: string, extra = ''): string {
  return `GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\n${extra}\r\n`;
}

test('a chunked response: extensions dropped, trailers relayed to an HTTP/1.1 client, the decoded body to an HTTP/1.0 one', async (t) => {
  const origin = await scriptedOrigin(t, (_head, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Digest\r\n\r\n5;ext="1"\r\nhello\r\n');
    setTimeout(() => socket.write('6\r\n world\r\n0\r\nX-Digest: abc\r\n\r\n'), 20);
  });
  const { port } = await startProxy(t);
  const url = `http://127.0.0.1:${origin.port}/`;
  const modern = await rawConnect(port);
  modern.socket.write(get(url));
  const text = await modern.waitFor('\r\n0\r\n');
  await modern.waitFor('X-Digest: abc\r\n\r\n');
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(text, /\r\nTransfer-Encoding: chunked\r\n/i);
  assert.match(text, /\r\nTrailer: X-Digest\r\n/i);
  const body = modern.received().toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
  assert.doesNotMatch(body, /ext=/, 'chunk extensions are not relayed');
  assert.deepEqual(dechunk(body), { data: 'hello world', trailers: 'X-Digest: abc\r\n' });
  modern.socket.destroy();

  const old = await rawConnect(port);
  old.socket.write(`GET ${url} HTTP/1.0\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
  const reply = (await old.untilEnd()).toString('latin1');
  assert.match(reply, /^HTTP\/1\.1 200 OK\r\n/);
  assert.doesNotMatch(reply, /Transfer-Encoding/i);
  assert.equal(reply.slice(reply.indexOf('\r\n\r\n') + 4), 'hello world', 'decoded, delimited by the close');
});

test('an origin connection is reused for the next request, and one that sent more than its response is not', async (t) => {
  const origin = await scriptedOrigin(t, (head, socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${head.startsWith('GET /extra') ? 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\njunk' : ''}`);
  });
  const { port } = await startProxy(t);
  const client = await rawConnect(port);
  const base = `http://127.0.0.1:${origin.port}`;
  for (const [index, path] of ['/a', '/b', '/extra', '/c'].entries()) {
    client.socket.write(get(`${base}${path}`));
    await waitFor(() => (client.received().toString('latin1').match(/\r\n\r\nok/g) ?? []).length === index + 1, 3000, `response ${index + 1}`);
  }
  assert.doesNotMatch(client.received().toString('latin1'), /junk/);
  assert.deepEqual(origin.requests.map((r) => r.connection), [1, 1, 1, 2], 'reused until the origin got out of step');
  assert.doesNotMatch(origin.requests[0]!.head, /^Connection:/im, 'HTTP/1.1 keeps the connection without saying so');
  client.socket.destroy();
});

test('a pooled connection the origin dropped is replaced for a GET; a POST with a body is not sent twice', async (t) => {
  const origin = await scriptedOrigin(t, (_head, socket, onConnection) => {
    // The first request on a connection is answered; the second finds it closed, as when an idle timeout races it.
    if (onConnection === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    else socket.destroy();
  });
  const { url } = await startProxy(t);
  const target = `http://127.0.0.1:${origin.port}/`;
  assert.equal((await curl(['-x', url, '-s', target])).stdout, 'ok');
  assert.equal((await curl(['-x', url, '-s', target])).stdout, 'ok', 'retried on a fresh connection');
  assert.deepEqual(origin.requests.map((r) => r.connection), [1, 1, 2]);

  const post = await curl(['-x', url, '-s', '-o', '/dev/null', '-w', '%{http_code}', '--data', 'once', target]);
  assert.equal(post.stdout, '502');
  assert.equal(origin.requests.filter((r) => r.head.startsWith('POST')).length, 1, 'the POST went once');
});

test('a response without a length runs to the origin\'s FIN, and its connection is not pooled', async (t) => {
  const origin = await scriptedOrigin(t, (_head, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ');
    setTimeout(() => socket.end('the close'), 20);
  });
  const { url } = await startProxy(t);
  const target = `http://127.0.0.1:${origin.port}/`;
  assert.equal((await curl(['-x', url, '-s', target])).stdout, 'until the close');
  assert.equal((await curl(['-x', url, '-s', target])).stdout, 'until the close');
  assert.equal(origin.connections(), 2);
});

test('HEAD, 204 and 304 responses have no body whatever their length says, and their connection is reused', async (t) => {
  const origin = await scriptedOrigin(t, (head, socket) => {
    if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n');
    else if (head.startsWith('GET /none')) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (head.startsWith('GET /same')) socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n');
    else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody');
  });
  const { port } = await startProxy(t);
  const base = `http://127.0.0.1:${origin.port}`;
  const client = await rawConnect(port);
  client.socket.write(`HEAD ${base}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  await client.waitFor('Content-Length: 100\r\n');
  client.socket.write(get(`${base}/none`));
  await client.waitFor('204 No Content');
  client.socket.write(get(`${base}/same`));
  await client.waitFor('304 Not Modified');
  client.socket.write(get(`${base}/full`));
  await client.waitFor('\r\n\r\nbody');
  assert.equal(origin.connections(), 1);
  client.socket.destroy();
});

test('Expect: 100-continue: the origin\'s 100 reaches the client, which then sends its body', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => res.end(`got ${body}`));
  });
  const { port } = await startProxy(t);
  const client = await rawConnect(port);
  client.socket.write(`POST ${origin.url}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
  await client.waitFor('HTTP/1.1 100 Continue\r\n\r\n');
  client.socket.write('hello');
  await client.waitFor('got hello');
  client.socket.destroy();
});

test('an asynchronous responseHeaders hook: the body bytes that came with the head follow once it is done', async (t) => {
  const origin = await scriptedOrigin(t, (_head, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world'));
  const { url } = await startProxy(t, { addons: [{ name: 'slow', async responseHeaders(flow) {
    await delay(50);
    flow.response!.headers.set('X-Checked', 'yes');
  } }] });
  const result = await curl(['-x', url, '-s', '-i', `http://127.0.0.1:${origin.port}/`]);
  assert.match(result.stdout, /\r\nX-Checked: yes\r\n/);
  assert.ok(result.stdout.endsWith('\r\n\r\nhello world'));
});

test('a hook cannot split the request: a header value with CR LF is refused with 500 and nothing reaches the origin', async (t) => {
  const origin = await scriptedOrigin(t, (_head, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  const { url } = await startProxy(t, { addons: [{ name: 'evil', requestHeaders(flow) {
    flow.request.headers.set('X-Evil', 'a\r\nX-Injected: 1');
  } }] });
  const result = await curl(['-x', url, '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${origin.port}/`]);
  assert.equal(result.stdout, '500');
  await delay(50);
  assert.equal(origin.connections(), 0);
});

test('request bodies: a chunked one is chunked again, a sized one goes as is, and the origin reads both whole', async (t) => {
  const seen: Array<{ framing: string; body: string }> = [];
  const origin = await startOrigin(t, (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ framing: req.headers['transfer-encoding'] ?? `length ${req.headers['content-length']}`, body });
      res.end('done');
    });
  });
  const { url } = await startProxy(t);
  const payload = 'p'.repeat(200_000);
  const file = join(await mkdtemp(join(tmpdir(), 'getaway-body-')), 'payload');
  await writeFile(file, payload);
  t.after(() => rm(dirname(file), { recursive: true, force: true }));
  assert.equal((await curl(['-x', url, '-s', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, `${origin.url}/`])).stdout, 'done');
  assert.equal((await curl(['-x', url, '-s', '--data-binary', `@${file}`, `${origin.url}/`])).stdout, 'done');
  assert.deepEqual(seen, [{ framing: 'chunked', body: payload }, { framing: 'length 200000', body: payload }]);
});

test('malformed chunking mid-body cuts the client\'s connection, the flow says why, and the proxy goes on serving', async (t) => {
  const origin = await scriptedOrigin(t, (head, socket) => {
    if (head.startsWith('GET /bad')) socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n');
    else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const errors: string[] = [];
  const { port, url } = await startProxy(t, { addons: [{ name: 'errors', error: (flow) => void errors.push(flow.error?.type ?? '') }] });
  const client = await rawConnect(port);
  client.socket.write(get(`http://127.0.0.1:${origin.port}/bad`));
  const text = (await client.untilEnd()).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.doesNotMatch(text, /\r\n0\r\n\r\n$/, 'the response does not look complete');
  await waitFor(() => errors.length === 1);
  assert.deepEqual(errors, ['http_protocol_error']);
  assert.equal((await curl(['-x', url, '-s', `http://127.0.0.1:${origin.port}/good`])).stdout, 'ok');
});

test('an origin that goes silent mid-body is cut after the response timeout; one held back by a slow client is not', async (t) => {
  const origin = await scriptedOrigin(t, (head, socket) => {
    if (head.startsWith('GET /stall')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!');
    else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n${'b'.repeat(8 * 1024 * 1024)}`);
  });
  const errors: string[] = [];
  const { port } = await startProxy(t, { responseTimeoutMs: 300, addons: [{ name: 'errors', error: (flow) => void errors.push(flow.error?.type ?? '') }] });
  const stalled = await rawConnect(port);
  stalled.socket.write(get(`http://127.0.0.1:${origin.port}/stall`));
  const text = (await stalled.untilEnd(3000)).toString('latin1');
  assert.ok(text.endsWith('half!'));
  await waitFor(() => errors.length === 1);
  assert.deepEqual(errors, ['connection_read_timeout']);

  const slow = await rawConnect(port);
  slow.socket.pause();
  slow.socket.write(get(`http://127.0.0.1:${origin.port}/big`));
  await delay(800);
  slow.socket.resume();
  await waitFor(() => slow.received().length > 8 * 1024 * 1024, 10_000, 'the whole body');
  assert.equal(errors.length, 1, 'waiting on the client is not the origin\'s silence');
  slow.socket.destroy();
});

test('https origins go through the direct exchange too: one TLS connection for a keep-alive client, the session resumed on a new one, chunked trailers and a large body intact', { timeout: 30_000 }, async (t) => {
  const certs = testCertificates();
  const big = Buffer.alloc(3 * 1024 * 1024 + 7);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  const server = createHttpsServer({ key: certs.leafKey, cert: certs.leafCert }, (req, res) => {
    if (req.url === '/big') {
      res.setHeader('Content-Length', String(big.length));
      res.end(big);
    } else if (req.url === '/chunked') {
      res.setHeader('Trailer', 'X-Sum');
      res.write('first,');
      res.write('second');
      res.addTrailers({ 'X-Sum': '12' });
      res.end();
    } else res.end(`ok ${req.url}`);
  });
  const handshakes: boolean[] = [];
  const seen = new WeakSet<object>();
  server.on('request', (req) => {
    const socket = req.socket as import('node:tls').TLSSocket;
    if (!seen.has(socket)) {
      seen.add(socket);
      handshakes.push(socket.isSessionReused());
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const { port: proxyPort } = await startProxy(t, { caBundle: [certs.caCert] });
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (path: string): Promise<{ status: number; body: Buffer; trailers: NodeJS.Dict<string> }> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxyPort, path: `https://localhost:${port}${path}`, headers: { host: `localhost:${port}` }, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), trailers: res.trailers }));
      });
      req.on('error', reject);
      req.end();
    });
  assert.equal((await get('/a')).body.toString(), 'ok /a');
  assert.equal((await get('/b')).body.toString(), 'ok /b');
  assert.deepEqual(handshakes, [false], 'both requests on one TLS connection to the origin');
  const chunked = await get('/chunked');
  assert.equal(chunked.body.toString(), 'first,second');
  assert.equal(chunked.trailers['x-sum'], '12');
  // The origin drops its idle connection: the next request needs a new one, which resumes the session.
  server.closeIdleConnections();
  await delay(100);
  const large = await get('/big');
  assert.equal(large.status, 200);
  assert.ok(large.body.equals(big), 'the large body arrived intact');
  assert.deepEqual(handshakes, [false, true], 'a second TLS connection, resumed');
});

test('https origins: an untrusted certificate is refused with 502 tls_certificate_error, and a handshake that never ends with the response timeout', async (t) => {
  const certs = testCertificates();
  const wrongName = createHttpsServer({ key: certs.otherLeafKey, cert: certs.otherLeafCert }, (_req, res) => res.end('should not be seen'));
  wrongName.listen(0, '127.0.0.1');
  await once(wrongName, 'listening');
  t.after(() => wrongName.close());
  // Accepts TCP and never answers the ClientHello.
  const silent = await startTcpServer(t, () => undefined);
  const { port: proxyPort } = await startProxy(t, { caBundle: [certs.caCert], responseTimeoutMs: 500 });
  const ask = async (port: number): Promise<string> => {
    const conn = await rawConnect(proxyPort);
    t.after(() => conn.socket.destroy());
    conn.socket.write(`GET https://localhost:${port}/ HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`);
    await conn.waitFor('\r\n\r\n');
    return conn.received().toString("latin1");
  };
  const refused = await ask((wrongName.address() as AddressInfo).port);
  assert.match(refused, /^HTTP\/1\.1 502 /);
  assert.match(refused, /error=tls_certificate_error/);
  const started = Date.now();
  const timedOut = await ask(silent.port);
  assert.match(timedOut, /^HTTP\/1\.1 504 /);
  assert.match(timedOut, /error=http_response_timeout/);
  assert.ok(Date.now() - started < 5000);
});

test('https origins: a read that says wait holds back the TLS records already decrypted, so a slow client, an asynchronous hook and the next request on the pooled connection all get every byte', { timeout: 30_000 }, async (t) => {
  const certs = testCertificates();
  const body = Buffer.alloc(2 * 1024 * 1024 + 3);
  for (let i = 0; i < body.length; i++) body[i] = (i * 13 + 5) & 0xff;
  let connections = 0;
  const server = createHttpsServer({ key: certs.leafKey, cert: certs.leafCert }, (_req, res) => {
    res.setHeader('Content-Length', String(body.length));
    res.end(body);
  });
  server.on('secureConnection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  // Node's TLS layer goes on handing over the records of a read after the exchange said stop (the client is slow, or
  // a hook has not finished): without holding them back, bytes were lost, or the connection went back to the pool
  // with its reading stopped and the next response on it was never read (response timeout, 504).
  const { port: proxyPort } = await startProxy(t, {
    caBundle: [certs.caCert],
    responseTimeoutMs: 3000,
    addons: [{ name: 'slow-hook', responseHeaders: () => delay(30) }],
  });
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (readAfterMs: number): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxyPort, path: `https://localhost:${port}/`, headers: { host: `localhost:${port}` }, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.pause();
        setTimeout(() => res.resume(), readAfterMs);
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
  for (const readAfterMs of [300, 0, 300]) {
    const { status, body: received } = await get(readAfterMs);
    assert.equal(status, 200);
    assert.equal(received.length, body.length);
    assert.ok(received.equals(body), 'every byte, in order');
  }
  assert.equal(connections, 1, 'all three on the one pooled TLS connection');
});

test('https origins: a large request body, sized or chunked, reaches the origin whole through the TLS exchange', { timeout: 30_000 }, async (t) => {
  const certs = testCertificates();
  const server = createHttpsServer({ key: certs.leafKey, cert: certs.leafCert }, (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    // A slow reader at first, so the proxy's writes to the TLS connection meet back-pressure.
    req.pause();
    setTimeout(() => req.resume(), 200);
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => res.end(`${length} ${hash.digest('hex')}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const { port: proxyPort } = await startProxy(t, { caBundle: [certs.caCert] });
  const body = Buffer.alloc(8 * 1024 * 1024 + 11);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 3) & 0xff;
  const expected = `${body.length} ${createHash('sha256').update(body).digest('hex')}`;
  for (const chunked of [false, true]) {
    const answer = await new Promise<string>((resolve, reject) => {
      const headers: Record<string, string> = { host: `localhost:${port}` };
      if (!chunked) headers['content-length'] = String(body.length);
      const req = httpRequest({ host: '127.0.0.1', port: proxyPort, method: 'POST', path: `https://localhost:${port}/upload`, headers }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      for (let offset = 0; offset < body.length; offset += 1024 * 1024) req.write(body.subarray(offset, offset + 1024 * 1024));
      req.end();
    });
    assert.equal(answer, expected, chunked ? 'chunked' : 'sized');
  }
});

/**
 * A TLS origin whose every answer is one write sent as 512-byte records: a head padded to exactly 512 bytes
 * (`start`, then an X-Pad field), `body`, then bytes no request asked for, all in one TCP segment, which the
 * proxy's TLS layer decrypts in one go while a slow responseHeaders hook holds the exchange. `get` asks it through a
 * proxy with that hook, on one keep-alive client connection.
 */
async function junkAfterResponse(t: TestContext, start: string, body: string): Promise<{ get(): Promise<{ status: number; body: string }>; connections(): number }> {
  const certs = testCertificates();
  let connections = 0;
  const server = createTlsServer({ key: certs.leafKey, cert: certs.leafCert }, (socket) => {
    connections++;
    socket.on('error', () => undefined);
    socket.setMaxSendFragment(512);
    socket.on('data', () => socket.write(`${start}X-Pad: ${'a'.repeat(512 - start.length - 11)}\r\n\r\n${body}JUNK`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const { port: proxyPort } = await startProxy(t, { caBundle: [certs.caCert], addons: [{ name: 'slow-hook', responseHeaders: () => delay(30) }] });
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxyPort, path: `https://localhost:${port}/`, headers: { host: `localhost:${port}` }, agent }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end();
    });
  return { get, connections: () => connections };
}

test('https origins: bytes past a bodiless response that came while a hook ran retire the connection instead of being dropped with it pooled', async (t) => {
  const origin = await junkAfterResponse(t, 'HTTP/1.1 204 No Content\r\n', '');
  for (let i = 0; i < 2; i++) {
    assert.equal((await origin.get()).status, 204);
    await delay(50);
  }
  assert.equal(origin.connections(), 2, 'the second request went on a new connection');
});

test('https origins: bytes past a body that was held back with it retire the connection once the body is relayed', async (t) => {
  // The head's record says wait (the hook); the body's and the junk's are held back, and handed on once it is done.
  const origin = await junkAfterResponse(t, 'HTTP/1.1 200 OK\r\nContent-Length: 512\r\n', 'b'.repeat(512));
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await origin.get(), { status: 200, body: 'b'.repeat(512) });
    await delay(50);
  }
  assert.equal(origin.connections(), 2, 'the second request went on a new connection');
});
