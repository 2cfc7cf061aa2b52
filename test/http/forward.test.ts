import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ProxyAgent, request as undiciRequest } from 'undici';
import { curl, rawConnect, runPython } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer } from '../helpers/servers.js';

test('curl -x: GET through the proxy reaches the origin in absolute form and comes back', async (t) => {
  const origin = await startOrigin(t, (req, res) => res.end(`${req.method} ${req.url} host=${req.headers.host}`));
  const { url } = await startProxy(t);
  const result = await curl(['-x', url, `${origin.url}/a/b?c=d`]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, `GET /a/b?c=d host=127.0.0.1:${origin.port}`);
});

test('undici ProxyAgent: POST and PUT bodies stream to the origin and back intact', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => res.end(JSON.stringify({ method: req.method, length, sha256: hash.digest('hex'), te: req.headers['transfer-encoding'] ?? null })));
  });
  const { url } = await startProxy(t);
  const agent = new ProxyAgent({ uri: url, proxyTunnel: false });
  t.after(() => agent.close());
  const body = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
  const expected = createHash('sha256').update(body).digest('hex');

  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const res = await undiciRequest(`${origin.url}/upload`, { method, body, dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await res.body.json(), { method, length: body.length, sha256: expected, te: null });
  }
  // A body of unknown length goes chunked and arrives whole.
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 10; i++) yield Buffer.alloc(1000, i);
  }
  const res = await undiciRequest(`${origin.url}/upload`, { method: 'POST', body: Readable.from(pieces()), dispatcher: agent });
  const json = (await res.body.json()) as { length: number; te: string };
  assert.equal(json.length, 10_000);
  assert.equal(json.te, 'chunked');
});

test('Python requests: GET and POST through the proxy', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => res.end(`${req.method}:${body}`));
  });
  const { url } = await startProxy(t);
  const script = [
    'import sys, requests',
    'proxies = {"http": sys.argv[1]}',
    'print(requests.get(sys.argv[2], proxies=proxies, timeout=10).text)',
    'print(requests.post(sys.argv[2], data=b"payload", proxies=proxies, timeout=10).text)',
  ].join('\n');
  const result = await runPython(script, [url, `${origin.url}/py`]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'GET:\nPOST:payload\n');
});

test('hop-by-hop fields are removed both ways, Connection-named ones too; Via is added; order, case and repeats survive', async (t) => {
  let received: string[] = [];
  const origin = await startOrigin(t, (req, res) => {
    received = req.rawHeaders;
    res.writeHead(200, [
      'X-First', '1',
      'Set-Cookie', 'a=1',
      'Connection', 'X-Secret-Resp',
      'X-Secret-Resp', 'hidden',
      'Keep-Alive', 'timeout=5',
      'set-cookie', 'b=2',
      'x-LAST', 'z',
      'Content-Length', '2',
    ]);
    res.end('ok');
  });
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(
    `GET ${origin.url}/h HTTP/1.1\r\n` +
      `Host: wrong.example\r\n` +
      `X-Zebra: 1\r\n` +
      `Connection: keep-alive, X-Secret\r\n` +
      `X-Secret: hidden\r\n` +
      `Proxy-Connection: keep-alive\r\n` +
      `Proxy-Authorization: Basic dXNlcjpwYXNz\r\n` +
      `TE: trailers\r\n` +
      `Proxy: http://evil.test:1\r\n` +
      `x-apple: 2\r\n` +
      `Cookie: c=1\r\n` +
      `cookie: d=2\r\n` +
      `Via: 1.0 earlier\r\n` +
      `\r\n`,
  );
  const text = await conn.waitFor('\r\n\r\nok');
  conn.socket.destroy();

  const names = received.filter((_, i) => i % 2 === 0);
  assert.deepEqual(names.slice(0, 8), ['Host', 'X-Zebra', 'x-apple', 'Cookie', 'cookie', 'Via', 'TE', 'Via']);
  assert.equal(received[1], `127.0.0.1:${origin.port}`, 'Host comes from the absolute URI, not the client (RFC 9112 §3.2.2)');
  assert.deepEqual(received.slice(6, 10), ['Cookie', 'c=1', 'cookie', 'd=2']);
  assert.deepEqual(received.slice(10, 14), ['Via', '1.0 earlier', 'TE', 'trailers']);
  assert.equal(received[14], 'Via');
  assert.match(received[15]!, /^1\.1 getaway-[0-9a-f]{8}$/, 'this instance\'s pseudonym (loop detection)');
  for (const gone of ['x-secret', 'proxy-connection', 'proxy-authorization', 'proxy']) {
    assert.ok(!names.some((n) => n.toLowerCase() === gone), `${gone} must not reach the origin`);
  }

  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const lines = head.split('\r\n').slice(1);
  assert.deepEqual(lines.slice(0, 4), ['X-First: 1', 'Set-Cookie: a=1', 'set-cookie: b=2', 'x-LAST: z']);
  assert.ok(lines.some((line) => /^Via: 1\.1 getaway-[0-9a-f]{8}$/.test(line)), head);
  assert.ok(!/x-secret-resp|keep-alive: timeout=5/i.test(head), head);
});

test('HEAD, 204 and 304 carry no body and the connection stays usable', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/204') res.writeHead(204).end();
    else if (req.url === '/304') res.writeHead(304, { ETag: '"x"' }).end();
    else res.writeHead(200, { 'Content-Length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`HEAD ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  conn.socket.write(`GET ${origin.url}/204 HTTP/1.1\r\nHost: x\r\n\r\n`);
  conn.socket.write(`GET ${origin.url}/304 HTTP/1.1\r\nHost: x\r\n\r\n`);
  conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = await conn.waitFor('\r\n\r\nhello');
  conn.socket.destroy();
  const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
  assert.deepEqual(statuses, ['200', '204', '304', '200']);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n(?:.*\r\n)*?Content-Length: 5\r\n(?:.*\r\n)*?\r\nHTTP\/1\.1 204/m, 'HEAD keeps Content-Length and sends no body');
});

test('client keep-alive: many requests on one client connection, pooled connections to the origin', async (t) => {
  const originPorts = new Set<number>();
  const origin = await startOrigin(t, (req, res) => {
    originPorts.add(req.socket.remotePort!);
    res.end(req.url);
  });
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  for (let i = 0; i < 5; i++) {
    conn.socket.write(`GET ${origin.url}/${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitFor(`\r\n\r\n/${i}`);
  }
  assert.equal(conn.ended(), false);
  conn.socket.destroy();
  assert.equal(originPorts.size, 1, 'sequential requests reuse one pooled origin connection');
});

test('Expect: 100-continue: the origin\'s 100 is relayed before the body is sent', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => res.end(`got ${length}`));
  });
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`POST ${origin.url}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n`);
  await conn.waitFor('HTTP/1.1 100 Continue\r\n\r\n');
  conn.socket.write('data');
  const text = await conn.waitFor('got 4');
  conn.socket.destroy();
  assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
});

test('trailers from a chunked response reach a client that said TE: trailers', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    assert.equal(req.headers.te, 'trailers');
    res.writeHead(200, { Trailer: 'X-Checksum' });
    res.write('part1');
    res.addTrailers({ 'X-Checksum': 'abc123' });
    res.end('part2');
  });
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: TE\r\n\r\n`);
  const text = await conn.waitFor('\r\n0\r\n');
  await conn.waitFor('X-Checksum: abc123\r\n\r\n');
  conn.socket.destroy();
  assert.match(text, /Transfer-Encoding: chunked/);
  assert.match(text, /Trailer: X-Checksum/);
});

test('a chunked response to an HTTP/1.0 client is delivered close-delimited', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.write('one,');
    res.end('two');
  });
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET ${origin.url}/ HTTP/1.0\r\n\r\n`);
  const text = (await conn.untilEnd()).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200 OK/);
  assert.doesNotMatch(text, /Transfer-Encoding/i);
  assert.ok(text.endsWith('\r\n\r\none,two'), text);
});

test('a stale pooled origin connection is retried transparently for a bodiless GET', async (t) => {
  // The origin answers the first request on each connection and drops the connection when a second one
  // arrives: the race of a keep-alive timeout expiring just as the proxy reuses the connection.
  let connections = 0;
  const origin = await startTcpServer(t, (socket) => {
    connections++;
    let requests = 0;
    socket.on('data', () => {
      requests++;
      if (requests === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else socket.destroy();
    });
  });
  const { url } = await startProxy(t);
  const agent = new ProxyAgent({ uri: url, proxyTunnel: false });
  t.after(() => agent.close());
  for (let i = 0; i < 3; i++) {
    const res = await undiciRequest(`http://127.0.0.1:${origin.port}/`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
  }
  assert.equal(connections, 3);
});

test('a long-poll response slower than idleTimeoutMs still arrives (idle applies between requests only)', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    setTimeout(() => res.end('late but fine'), 400);
  });
  const { url } = await startProxy(t, { idleTimeoutMs: 100 });
  const result = await curl(['-x', url, origin.url]);
  assert.equal(result.stdout, 'late but fine', result.stderr);
});
