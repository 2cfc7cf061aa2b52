/**
 * Every failure mode gets its status and Proxy-Status type, and afterwards the same proxy still serves and
 * holds no leftover sockets.
 */
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { curl, pythonWithRequests, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, waitFor, type StartedProxy } from '../helpers/servers.js';

async function assertStillServes(t: TestContext, started: StartedProxy): Promise<void> {
  const origin = await startOrigin(t, (_req, res) => res.end('alive'));
  const result = await curl(['-x', started.url, origin.url]);
  assert.equal(result.stdout, 'alive', result.stderr);
  await waitFor(() => started.proxy.connections === 0 && started.proxy.activeFlows === 0, 3000, 'no sockets or flows left');
}

function statusAndProxyStatus(text: string): { status: number; proxyStatus: string | undefined } {
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]),
    proxyStatus: /^Proxy-Status: (.*)$/im.exec(text)?.[1]?.trim(),
  };
}

async function rawExchange(port: number, request: string, timeoutMs = 5000): Promise<string> {
  const conn = await rawConnect(port);
  conn.socket.write(request);
  const text = (await conn.untilEnd(timeoutMs)).toString('latin1');
  conn.socket.destroy();
  return text;
}

test('DNS failure → 502 dns_error', async (t) => {
  const started = await startProxy(t);
  const result = await curl(['-x', started.url, '-i', 'http://no-such-host.invalid/']);
  const { status, proxyStatus } = statusAndProxyStatus(result.stdout);
  assert.equal(status, 502);
  assert.match(proxyStatus ?? '', /^getaway; error=dns_error; details="ENOTFOUND/);
  await assertStillServes(t, started);
});

test('connection refused → 502 connection_refused, for HTTP and for CONNECT', async (t) => {
  const started = await startProxy(t);
  const closed = await startTcpServer(t, () => undefined);
  const port = closed.port;
  await new Promise<void>((resolve) => closed.server.close(() => resolve()));
  const http = await curl(['-x', started.url, '-i', `http://127.0.0.1:${port}/`]);
  assert.equal(statusAndProxyStatus(http.stdout).status, 502);
  assert.match(statusAndProxyStatus(http.stdout).proxyStatus ?? '', /error=connection_refused/);
  const tunnel = await rawExchange(started.port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  assert.equal(statusAndProxyStatus(tunnel).status, 502);
  assert.match(tunnel, /Connection: close/);
  assert.match(statusAndProxyStatus(tunnel).proxyStatus ?? '', /error=connection_refused/);
  await assertStillServes(t, started);
});

/**
 * A listener whose accept queue is full: Linux drops further SYNs, so connecting hangs, which is what an
 * unreachable host looks like. Python holds the socket because Node always accepts.
 */
async function startBlackhole(t: TestContext): Promise<number> {
  const script = [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'port = s.getsockname()[1]',
    'fillers = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", port))',
    '    except BlockingIOError: pass',
    '    fillers.append(c)',
    'time.sleep(0.2)',
    'print(port, flush=True)',
    'time.sleep(30)',
  ].join('\n');
  const child: ChildProcess = execFile(pythonWithRequests(), ['-c', script], { timeout: 40_000 });
  t.after(() => child.kill());
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('error', reject);
  });
}

test('connect timeout → 504 connection_timeout, for HTTP and for CONNECT', async (t) => {
  const port = await startBlackhole(t);
  const started = await startProxy(t, { connectTimeoutMs: 300 });
  const http = await curl(['-x', started.url, '-i', `http://127.0.0.1:${port}/`]);
  assert.equal(statusAndProxyStatus(http.stdout).status, 504, http.stdout + http.stderr);
  assert.match(statusAndProxyStatus(http.stdout).proxyStatus ?? '', /error=connection_timeout/);
  const tunnel = await rawExchange(started.port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.equal(statusAndProxyStatus(tunnel).status, 504);
  assert.match(statusAndProxyStatus(tunnel).proxyStatus ?? '', /error=connection_timeout/);
  await assertStillServes(t, started);
});

test('an origin that never answers → 504 http_response_timeout', async (t) => {
  const silent = await startTcpServer(t, (socket) => socket.resume());
  const started = await startProxy(t, { responseTimeoutMs: 300 });
  const result = await curl(['-x', started.url, '-i', `http://127.0.0.1:${silent.port}/`]);
  assert.equal(statusAndProxyStatus(result.stdout).status, 504);
  assert.match(statusAndProxyStatus(result.stdout).proxyStatus ?? '', /error=http_response_timeout/);
  await assertStillServes(t, started);
});

test('an origin that dies mid-response makes the client response end as an error, not short and complete', async (t) => {
  const dying = await startTcpServer(t, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n');
      socket.write(Buffer.alloc(5000, 'a'), () => setTimeout(() => socket.destroy(), 20));
    });
  });
  const chunked = await startTcpServer(t, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      setTimeout(() => socket.destroy(), 20);
    });
  });
  const started = await startProxy(t);
  for (const port of [dying.port, chunked.port]) {
    const result = await curl(['-x', started.url, `http://127.0.0.1:${port}/`]);
    // 18: "partial file" (Content-Length not met); 56: failure receiving (chunked stream cut)
    assert.ok(result.code === 18 || result.code === 56, `curl exit ${result.code}: ${result.stderr}`);
  }
  // The raw view: the client's connection is cut, never followed by a next response.
  const conn = await rawConnect(started.port);
  conn.socket.write(`GET http://127.0.0.1:${chunked.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = (await conn.untilEnd()).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 200 OK/);
  assert.doesNotMatch(text, /\r\n0\r\n\r\n$/, 'the terminating chunk must not be sent');
  await assertStillServes(t, started);
});

test('malformed requests → 400 and the connection closes', async (t) => {
  const started = await startProxy(t);
  const cases = [
    'GARBAGE\r\n\r\n',
    'GET http://example.test/ HTTP/9.9\r\n\r\n',
    'GET ftp://example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n',
    'GET http://user:pw@example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n',
    'GET http://example.test:99999/ HTTP/1.1\r\nHost: example.test\r\n\r\n',
    'CONNECT example.test HTTP/1.1\r\nHost: example.test\r\n\r\n',
    'CONNECT example.test:0 HTTP/1.1\r\nHost: example.test\r\n\r\n',
    'CONNECT [::1 HTTP/1.1\r\nHost: x\r\n\r\n',
  ];
  for (const request of cases) {
    const text = await rawExchange(started.port, request);
    assert.equal(statusAndProxyStatus(text).status, 400, `${JSON.stringify(request)} → ${text}`);
    assert.match(text, /Connection: close/i);
  }
  await assertStillServes(t, started);
});

test('an origin-form request to the proxy itself gets a 400 that explains what the proxy is', async (t) => {
  const started = await startProxy(t);
  const result = await curl(['-i', `${started.url}/`]);
  assert.equal(statusAndProxyStatus(result.stdout).status, 400);
  assert.match(result.stdout, /this is getaway, a forward proxy/);
  await assertStillServes(t, started);
});

test('requests aimed at the proxy\'s own address are refused (no loops), by IP and by name', async (t) => {
  const started = await startProxy(t);
  const mappedSpellings = [`[::ffff:7f00:1]:${started.port}`, `[0:0:0:0:0:ffff:127.0.0.1]:${started.port}`, `[::FFFF:127.0.0.1]:${started.port}`];
  for (const target of [`http://127.0.0.1:${started.port}/`, `http://localhost:${started.port}/`, ...mappedSpellings.map((a) => `http://${a}/`)]) {
    const result = await curl(['-x', started.url, '-i', '--globoff', target]);
    assert.equal(statusAndProxyStatus(result.stdout).status, 502, result.stdout);
    assert.match(statusAndProxyStatus(result.stdout).proxyStatus ?? '', /error=proxy_loop_detected/);
  }
  for (const authority of [`127.0.0.1:${started.port}`, ...mappedSpellings]) {
    const tunnel = await rawExchange(started.port, `CONNECT ${authority} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(statusAndProxyStatus(tunnel).proxyStatus ?? '', /error=proxy_loop_detected/, `${authority}: ${tunnel}`);
  }
  await assertStillServes(t, started);
});

test('a client that trickles its request head is cut off with 408 (slowloris)', async (t) => {
  const started = await startProxy(t, { requestHeadersTimeoutMs: 300 });
  const conn = await rawConnect(started.port);
  conn.socket.write('GET http://example.test/ HTTP/1.1\r\n');
  const timer = setInterval(() => conn.socket.writable && conn.socket.write('X-Slow: 1\r\n'), 50);
  t.after(() => clearInterval(timer));
  const text = (await conn.untilEnd(5000)).toString('latin1');
  clearInterval(timer);
  assert.equal(statusAndProxyStatus(text).status, 408, text);
  await assertStillServes(t, started);
});

test('an idle keep-alive client connection is closed after idleTimeoutMs', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const started = await startProxy(t, { idleTimeoutMs: 200 });
  const conn = await rawConnect(started.port);
  conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.waitFor('\r\n\r\nok');
  const before = Date.now();
  await conn.untilEnd(5000);
  assert.ok(Date.now() - before >= 150, 'closed by the idle timeout, not at once');
  await assertStillServes(t, started);
});

test('a client that disconnects mid-response leaves nothing behind', async (t) => {
  let originClosed = false;
  const origin = await startOrigin(t, (_req, res) => {
    res.write(Buffer.alloc(64 * 1024));
    const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024)), 5);
    res.on('close', () => {
      clearInterval(timer);
      originClosed = true;
    });
  });
  const seen: string[] = [];
  const started = await startProxy(t, { addons: [{ name: 'watch', error: (flow) => void seen.push(flow.error!.type) }] });
  const conn = await rawConnect(started.port);
  conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.waitFor('HTTP/1.1 200');
  conn.socket.destroy();
  await waitFor(() => originClosed, 3000, 'the origin request to be aborted');
  await waitFor(() => seen.length === 1);
  assert.deepEqual(seen, ['client_aborted']);
  await assertStillServes(t, started);
});
