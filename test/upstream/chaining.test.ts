/**
 * Chaining through upstream proxies with real clients: rotation, failover invisible to the client, credentials
 * sent to the upstream and never to the origin, SOCKS5, tinyproxy, routing rules and --bind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Flow, HttpFlow } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, startTlsOrigin, waitFor } from '../helpers/servers.js';
import { testCertificates } from '../helpers/test-ca.js';
import { startCountingProxy, startSocksServer, startTinyproxy } from '../helpers/upstream-proxies.js';

function recordFlows(): { flows: Flow[]; addon: { name: string; response: (f: HttpFlow) => void; tunnelClosed: (f: Flow) => void; error: (f: Flow) => void } } {
  const flows: Flow[] = [];
  const push = (flow: Flow): void => void flows.push(flow);
  return { flows, addon: { name: 'record', response: push, tunnelClosed: push, error: push } };
}

test('round-robin spreads plain requests and CONNECT tunnels evenly over three upstreams', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const certs = testCertificates();
  const tlsOrigin = await startTlsOrigin(t, certs, (_req, res) => res.end('secure'));
  const upstreams = [await startCountingProxy(t), await startCountingProxy(t), await startCountingProxy(t)];
  const { url } = await startProxy(t, { upstreams: upstreams.map((u) => u.url) });
  for (let i = 0; i < 6; i++) {
    assert.equal((await curl(['-x', url, `${origin.url}/${i}`])).stdout, 'ok');
    assert.equal((await curl(['-x', url, '--cacert', certs.caCertPath, `${tlsOrigin.url}/${i}`])).stdout, 'secure');
  }
  assert.deepEqual(upstreams.map((u) => u.requests.length), [2, 2, 2]);
  assert.deepEqual(upstreams.map((u) => u.connects.length), [2, 2, 2]);
  assert.ok(upstreams[0]!.requests.every((r) => r.startsWith(`${origin.url}/`)), 'plain HTTP reaches the upstream in absolute form');
});

test('weights: a weight-2 upstream takes twice the share', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const [big, small] = [await startCountingProxy(t), await startCountingProxy(t)];
  const { url } = await startProxy(t, { upstreams: [{ url: big.url, weight: 2 }, small.url] });
  for (let i = 0; i < 9; i++) await curl(['-x', url, origin.url]);
  assert.deepEqual([big.requests.length, small.requests.length], [6, 3]);
});

test('sticky-host keeps each target host on one exit', async (t) => {
  const originA = await startOrigin(t, (_req, res) => res.end('a'));
  const originB = await startOrigin(t, (_req, res) => res.end('b'));
  const upstreams = [await startCountingProxy(t), await startCountingProxy(t)];
  const { url } = await startProxy(t, { upstreams: upstreams.map((u) => u.url), strategy: 'sticky-host' });
  // Same host (127.0.0.1) for both origins would stick them together; use localhost for one of them.
  for (let i = 0; i < 3; i++) {
    await curl(['-x', url, originA.url]);
    await curl(['-x', url, `http://localhost:${originB.port}/`]);
  }
  const byUpstream = upstreams.map((u) => new Set(u.requests.map((r) => new URL(r).hostname)));
  assert.deepEqual(byUpstream.map((hosts) => hosts.size), [1, 1]);
  assert.notDeepEqual([...byUpstream[0]!], [...byUpstream[1]!]);
});

for (const mode of ['connect-403', 'close', 'hang', 'status-407'] as const) {
  test(`failover: an upstream that answers CONNECT with ${mode} is passed over, invisibly to the client`, async (t) => {
    const certs = testCertificates();
    const tlsOrigin = await startTlsOrigin(t, certs, (_req, res) => res.end('secure'));
    const broken = await startCountingProxy(t, { mode });
    const good = await startCountingProxy(t);
    const { flows, addon } = recordFlows();
    const { url } = await startProxy(t, { upstreams: [broken.url, good.url], strategy: 'primary-backup', connectTimeoutMs: 300, addons: [addon] });
    const result = await curl(['-x', url, '--cacert', certs.caCertPath, `${tlsOrigin.url}/`]);
    assert.equal(result.stdout, 'secure', result.stderr);
    assert.equal(good.connects.length, 1);
    await waitFor(() => flows.length === 1);
    assert.equal(flows[0]!.upstream, `http://127.0.0.1:${good.port}`);
    assert.deepEqual(flows[0]!.routeAttempts.map((a) => [a.route, a.outcome]), [[`http://127.0.0.1:${broken.port}`, 'failed'], [`http://127.0.0.1:${good.port}`, 'served']]);
  });
}

test('failover for plain requests: an unreachable upstream and a 407 are passed over', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const refusing = await startCountingProxy(t, { mode: 'status-407' });
  const good = await startCountingProxy(t);
  const { url } = await startProxy(t, { upstreams: ['http://127.0.0.1:1', refusing.url, good.url], strategy: 'primary-backup' });
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'ok');
  assert.equal(good.requests.length, 1);
});

test('a POST whose body went to a failing upstream is not replayed elsewhere', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const closing = await startCountingProxy(t, { mode: 'close' });
  const good = await startCountingProxy(t);
  const { url } = await startProxy(t, { upstreams: [closing.url, good.url], strategy: 'primary-backup' });
  const result = await curl(['-x', url, '-i', '--data-binary', 'payload', origin.url]);
  assert.match(result.stdout, /^HTTP\/1\.1 502 /);
  assert.equal(good.requests.length, 0, 'a request that may have reached an origin is not sent twice');
});

test('429 puts an upstream on cooldown for Retry-After; the client never sees it while others serve', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const shedding = await startCountingProxy(t, { mode: 'status-429', retryAfterSeconds: 60 });
  const good = await startCountingProxy(t);
  const { flows, addon } = recordFlows();
  const { url } = await startProxy(t, { upstreams: [shedding.url, good.url], addons: [addon] });
  for (let i = 0; i < 4; i++) assert.equal((await curl(['-x', url, origin.url])).stdout, 'ok');
  assert.equal(shedding.authorizations.length, 1, 'asked once, then left alone during the cooldown');
  assert.equal(good.requests.length, 4);
  await waitFor(() => flows.length === 4);
  assert.ok(flows.slice(1).some((f) => f.routeAttempts.some((a) => a.outcome === 'skipped' && /cooling down after 429/.test(a.reason ?? ''))));
});

test('when every upstream refuses, the client gets the last one\'s status: 403, or 429 with its Retry-After', async (t) => {
  const certs = testCertificates();
  const tlsOrigin = await startTlsOrigin(t, certs, (_req, res) => res.end('secure'));
  const refusing = await startCountingProxy(t, { mode: 'connect-403' });
  const first = await startProxy(t, { upstreams: [refusing.url] });
  const denied = await curl(['-x', first.url, '-v', '--cacert', certs.caCertPath, tlsOrigin.url]);
  assert.match(denied.stderr, /< HTTP\/1\.1 403 /);
  assert.match(denied.stderr, /Proxy-Status: getaway; error=connection_refused; details="upstream http:\/\/127\.0\.0\.1:\d+ answered CONNECT with 403/);
  const shedding = await startCountingProxy(t, { mode: 'status-429', retryAfterSeconds: 7 });
  const second = await startProxy(t, { upstreams: [shedding.url] });
  const limited = await curl(['-x', second.url, '-v', '--cacert', certs.caCertPath, tlsOrigin.url]);
  assert.match(limited.stderr, /< HTTP\/1\.1 429 /);
  assert.match(limited.stderr, /< Retry-After: 7/);
});

test('an upstream that keeps failing is taken out (circuit breaker) and the flows say why', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const good = await startCountingProxy(t);
  const { flows, addon } = recordFlows();
  const { url } = await startProxy(t, { upstreams: ['http://127.0.0.1:1', good.url], addons: [addon] });
  for (let i = 0; i < 8; i++) assert.equal((await curl(['-x', url, origin.url])).stdout, 'ok');
  await waitFor(() => flows.length === 8);
  const tried = flows.map((f) => f.routeAttempts.filter((a) => a.route === 'http://127.0.0.1:1')[0]?.outcome ?? 'not considered');
  assert.equal(tried.filter((o) => o === 'failed').length, 3, `failures before the circuit opened: ${tried.join(', ')}`);
  assert.ok(tried.slice(-2).every((o) => o === 'skipped'), tried.join(', '));
});

test('credentials go to the upstream as Proxy-Authorization and never to the origin', async (t) => {
  const seenByOrigin: Array<string | undefined> = [];
  const origin = await startOrigin(t, (req, res) => {
    seenByOrigin.push(req.headers['proxy-authorization']);
    res.end('ok');
  });
  const certs = testCertificates();
  const tlsOrigin = await startTlsOrigin(t, certs, (req, res) => {
    seenByOrigin.push(req.headers['proxy-authorization']);
    res.end('secure');
  });
  const expected = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
  const upstream = await startCountingProxy(t, { requireAuthorization: expected });
  const { url } = await startProxy(t, { upstreams: [`http://alice:s3cret@127.0.0.1:${upstream.port}`] });
  // The client authenticates to *us* with other credentials; those must not travel either.
  assert.equal((await curl(['-x', url, '--proxy-user', 'client:other', origin.url])).stdout, 'ok');
  assert.equal((await curl(['-x', url, '--proxy-user', 'client:other', '--cacert', certs.caCertPath, tlsOrigin.url])).stdout, 'secure');
  assert.deepEqual(upstream.authorizations, [expected, expected]);
  assert.deepEqual(seenByOrigin, [undefined, undefined]);
});

for (const protocol of ['socks5', 'socks5h'] as const) {
  test(`${protocol}:// upstream with credentials: plain HTTP and CONNECT; names resolved ${protocol === 'socks5h' ? 'by the proxy' : 'here'}`, async (t) => {
    const origin = await startOrigin(t, (_req, res) => res.end('via socks'));
    const socks = await startSocksServer(t, { username: 'bob', password: 'pw' });
    const { url } = await startProxy(t, { upstreams: [`${protocol}://bob:pw@127.0.0.1:${socks.port}`] });
    assert.equal((await curl(['-x', url, `http://localhost:${origin.port}/`])).stdout, 'via socks');
    assert.equal((await curl(['-p', '-x', url, `http://localhost:${origin.port}/`])).stdout, 'via socks');
    assert.deepEqual(socks.users, ['bob', 'bob']);
    const expected = protocol === 'socks5h' ? { host: 'localhost', type: 'domain' } : { host: '127.0.0.1', type: 'ipv4' };
    assert.deepEqual(socks.destinations, [expected, expected]);
  });
}

test('a real tinyproxy as upstream: plain HTTP and CONNECT', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('via tinyproxy'));
  const certs = testCertificates();
  const tlsOrigin = await startTlsOrigin(t, certs, (_req, res) => res.end('secure via tinyproxy'));
  const tinyproxy = await startTinyproxy(t);
  const { url } = await startProxy(t, { upstreams: [tinyproxy.url] });
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'via tinyproxy');
  assert.equal((await curl(['-x', url, '--cacert', certs.caCertPath, tlsOrigin.url])).stdout, 'secure via tinyproxy');
});

test('routing rules: matching hosts go direct or to a named group; WebSocket upgrades follow the route', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const defaultExit = await startCountingProxy(t);
  const crawlExit = await startCountingProxy(t);
  const { url, port } = await startProxy(t, {
    upstreams: [defaultExit.url, { url: crawlExit.url, group: 'crawl' }],
    routes: [
      { match: 'localhost', via: 'crawl' },
      { match: '10.0.0.0/8', via: 'direct' },
    ],
  });
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'ok');
  assert.equal((await curl(['-x', url, `http://localhost:${origin.port}/`])).stdout, 'ok');
  assert.equal(defaultExit.requests.length, 1);
  assert.equal(crawlExit.requests.length, 1);
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://localhost:${origin.port}/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
  await conn.untilEnd();
  assert.deepEqual(crawlExit.connects, [`localhost:${origin.port}`], 'the upgrade went through the group\'s upstream as a tunnel');
});

test('--bind rotates the local address of direct connections', async (t) => {
  const seen: string[] = [];
  const origin = await startOrigin(t, (req, res) => {
    seen.push(req.socket.remoteAddress ?? '');
    res.setHeader('Connection', 'close');
    res.end('ok');
  });
  const { url } = await startProxy(t, { bind: ['127.0.0.2', '127.0.0.3'] });
  for (let i = 0; i < 4; i++) assert.equal((await curl(['-x', url, origin.url])).stdout, 'ok');
  assert.deepEqual(seen, ['127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.3']);
});

test('sticky-user keeps a client-presented user name (a session key) on one exit', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const upstreams = [await startCountingProxy(t), await startCountingProxy(t), await startCountingProxy(t)];
  const { url } = await startProxy(t, { upstreams: upstreams.map((u) => u.url), strategy: 'sticky-user' });
  for (let i = 0; i < 6; i++) {
    await curl(['-x', url, '--proxy-user', `session-${i % 2}:x`, `${origin.url}/${i % 2}`]);
  }
  const holders = upstreams.map((u) => new Set(u.requests.map((r) => r.slice(-1))));
  assert.equal(holders.filter((h) => h.size > 0).length, 2, 'two sessions, two exits');
  assert.ok(holders.every((h) => h.size <= 1), 'each exit saw one session only');
});

test('least-busy counts open tunnels: a second tunnel goes to the idle upstream', async (t) => {
  const echo = await startOrigin(t, (_req, res) => res.end('ok'));
  const upstreams = [await startCountingProxy(t), await startCountingProxy(t)];
  const { port } = await startProxy(t, { upstreams: upstreams.map((u) => u.url), strategy: 'least-busy' });
  const first = await rawConnect(port);
  first.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await first.waitFor('200 Connection Established');
  for (let i = 0; i < 3; i++) {
    const next = await rawConnect(port);
    next.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await next.waitFor('200 Connection Established');
    next.socket.destroy();
    await waitFor(() => upstreams.reduce((n, u) => n + u.connects.length, 0) === i + 2);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  const busy = upstreams.findIndex((u) => u.connects.length === 1);
  assert.notEqual(busy, -1, `connect counts: ${upstreams.map((u) => u.connects.length).join(',')}`);
  assert.equal(upstreams[1 - busy]!.connects.length, 3, 'short tunnels all went to the upstream without the long one');
  first.socket.destroy();
});
