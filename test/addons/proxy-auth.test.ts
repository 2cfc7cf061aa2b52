import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ProxyAgent, request as undiciRequest } from 'undici';
import { flowLog, type HttpFlow } from '../../src/index.js';
import { metrics, registerProxyMetrics } from '../../src/metrics.js';
import { curl, runPython } from '../helpers/clients.js';
import { startRecordingOrigin } from '../helpers/recording-origin.js';
import { startOrigin, startProxy, waitFor } from '../helpers/servers.js';
import { startCountingProxy } from '../helpers/upstream-proxies.js';

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

test('Basic proxy auth with curl: 407 and a challenge without or with wrong credentials; the right ones pass, and the user is on the flow', async (t) => {
  const seen: Array<string | undefined> = [];
  const origin = await startOrigin(t, (req, res) => res.end(`auth=${req.headers['proxy-authorization'] ?? 'none'}`));
  const { url } = await startProxy(t, {
    auth: { users: ['alice:s3cret:with:colons', 'bob:hunter2'] },
    addons: [{ name: 'users', response: (flow: HttpFlow) => void seen.push(flow.user), tunnelClosed: (flow) => void seen.push(flow.user) }],
  });
  const none = await curl(['-s', '-i', '-x', url, `${origin.url}/`]);
  assert.match(none.stdout, /^HTTP\/1\.1 407 /);
  assert.match(none.stdout, /\r\nProxy-Authenticate: Basic realm="getaway", charset="UTF-8"\r\n/);
  assert.match(none.stdout, /error=http_request_denied/);
  const wrong = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, '--proxy-user', 'alice:nope', `${origin.url}/`]);
  assert.equal(wrong.stdout, '407');
  const right = await curl(['-s', '-x', url, '--proxy-user', 'alice:s3cret:with:colons', `${origin.url}/`]);
  assert.equal(right.stdout, 'auth=none', 'the origin never sees Proxy-Authorization');
  const tunnel = await curl(['-s', '-p', '-x', url, '--proxy-user', 'bob:hunter2', `${origin.url}/`]);
  assert.equal(tunnel.stdout, 'auth=none');
  const refusedTunnel = await curl(['-s', '-p', '-x', url, `${origin.url}/`, '-o', '/dev/null', '-w', '%{http_connect}']);
  assert.equal(refusedTunnel.stdout, '407');
  await waitFor(() => seen.length === 2, 3000, 'the tunnel to close');
  assert.deepEqual(seen, ['alice', 'bob']);
});

test('Python requests and undici authenticate with credentials in the proxy URL and through a token', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { port } = await startProxy(t, { auth: { users: ['py:thon'] } });
  const python = await runPython(
    'import sys, requests; r = requests.get(sys.argv[1], proxies={"http": sys.argv[2]}, timeout=10); print(r.status_code, r.text)',
    [`${origin.url}/`, `http://py:thon@127.0.0.1:${port}`],
  );
  assert.equal(python.stdout.trim(), '200 ok', python.stderr);
  const agent = new ProxyAgent({ uri: `http://127.0.0.1:${port}`, token: basic('py', 'thon'), proxyTunnel: false });
  t.after(() => agent.close());
  const response = await undiciRequest(`${origin.url}/`, { dispatcher: agent });
  assert.equal(response.statusCode, 200);
  assert.equal(await response.body.text(), 'ok');
});

test('an htpasswd file with bcrypt, SHA-1 and MD5 entries (made by Apache htpasswd) is read, and re-read by reload()', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-htpasswd-'));
  const file = join(dir, 'users');
  execFileSync('htpasswd', ['-c', '-b', '-B', file, 'bcrypt-user', 'pw-bcrypt']);
  execFileSync('htpasswd', ['-b', '-s', file, 'sha-user', 'pw-sha']);
  execFileSync('htpasswd', ['-b', '-m', file, 'md5-user', 'pw-md5']);
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { url, proxy } = await startProxy(t, { auth: { file } });
  for (const [user, password] of [['bcrypt-user', 'pw-bcrypt'], ['sha-user', 'pw-sha'], ['md5-user', 'pw-md5']] as const) {
    const ok = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, '--proxy-user', `${user}:${password}`, `${origin.url}/`]);
    assert.equal(ok.stdout, '200', user);
    const bad = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, '--proxy-user', `${user}:${password}x`, `${origin.url}/`]);
    assert.equal(bad.stdout, '407', user);
  }
  execFileSync('htpasswd', ['-D', file, 'sha-user']);
  execFileSync('htpasswd', ['-b', '-B', file, 'new-user', 'pw-new']);
  await proxy.reload();
  const removed = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, '--proxy-user', 'sha-user:pw-sha', `${origin.url}/`]);
  assert.equal(removed.stdout, '407', 'a removed user is refused at once, although verified before');
  const added = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, '--proxy-user', 'new-user:pw-new', `${origin.url}/`]);
  assert.equal(added.stdout, '200');
  writeFileSync(file, 'broken line without colon\n');
  await assert.rejects(proxy.reload(), /expected user:hash/);
  const kept = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, '--proxy-user', 'new-user:pw-new', `${origin.url}/`]);
  assert.equal(kept.stdout, '200', 'a broken file keeps the users already loaded');
});

test('failed attempts are limited per client: past ten a minute, 429 with Retry-After, and the proxy keeps serving', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { url } = await startProxy(t, { auth: { users: ['alice:right'] } });
  const codes: string[] = [];
  for (let i = 0; i < 11; i++) {
    codes.push((await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, '--proxy-user', `alice:wrong${i}`, `${origin.url}/`])).stdout);
  }
  assert.deepEqual(codes, [...Array(10).fill('407'), '429']);
  const limited = await curl(['-s', '-i', '-x', url, '--proxy-user', 'alice:right', `${origin.url}/`]);
  assert.match(limited.stdout, /^HTTP\/1\.1 429 /);
  assert.match(limited.stdout, /\r\nRetry-After: \d+\r\n/);
});

test('credentials appear in no log line and reach no upstream; the upstream gets its own', async (t) => {
  const upstream = await startRecordingOrigin(t);
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()) }));
  const { url } = await startProxy(t, {
    logger,
    addons: [flowLog()],
    auth: { users: ['carol:T0p-Secret'] },
    upstreams: [`http://up-user:up-pass@127.0.0.1:${upstream.port}`],
  });
  await curl(['-s', '-x', url, '--proxy-user', 'carol:T0p-Secret', 'http://origin.example/']);
  await curl(['-s', '-x', url, '--proxy-user', 'carol:wrong-Secret', 'http://origin.example/']);
  const received = upstream.received().join('');
  assert.match(received, /^GET http:\/\/origin\.example\/ HTTP\/1\.1\r\n/);
  const authorizations = received.match(/proxy-authorization: [^\r]*/gi) ?? [];
  assert.deepEqual(authorizations.map((line) => line.split(': ')[1]), [basic('up-user', 'up-pass')]);
  const log = lines.join('');
  for (const secret of ['T0p-Secret', 'wrong-Secret', Buffer.from('carol:T0p-Secret').toString('base64'), 'up-pass']) {
    assert.ok(!log.includes(secret), `"${secret}" is in the log`);
  }
  assert.match(log, /"user":"carol"/);
});

test('sticky-user keys on the verified user', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const upstreams = [await startCountingProxy(t), await startCountingProxy(t), await startCountingProxy(t)];
  const { url } = await startProxy(t, { auth: { users: ['u1:p', 'u2:p'] }, upstreams: upstreams.map((u) => u.url), strategy: 'sticky-user' });
  for (let i = 0; i < 6; i++) await curl(['-s', '-x', url, '--proxy-user', `u${(i % 2) + 1}:p`, `${origin.url}/u${(i % 2) + 1}`]);
  const holders = upstreams.map((u) => new Set(u.requests.map((r) => r.slice(-2))));
  assert.equal(holders.filter((h) => h.size > 0).length, 2, 'two users, two exits');
  assert.ok(holders.every((h) => h.size <= 1), 'each exit saw one user only');
});

test('credentials appear in no metric either; authentication comes before the access rules (407, not 403)', async (t) => {
  const registry = new Registry();
  const { url, proxy } = await startProxy(t, {
    auth: { users: ['dave:Very-Secret-9'] },
    accessRules: [{ name: 'no-example', action: 'deny', hosts: ['example.test'] }],
    addons: [metrics({ registry })],
  });
  registerProxyMetrics(registry, proxy);
  const anonymous = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, 'http://example.test/']);
  assert.equal(anonymous.stdout, '407', 'who the client is must be known before a rule is judged');
  const denied = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, '--proxy-user', 'dave:Very-Secret-9', 'http://example.test/']);
  assert.equal(denied.stdout, '403');
  await curl(['-s', '-x', url, '--proxy-user', 'dave:wrong-Secret-9', 'http://example.test/']);
  const text = await registry.metrics();
  assert.match(text, /getaway_/);
  for (const secret of ['Very-Secret-9', 'wrong-Secret-9', Buffer.from('dave:Very-Secret-9').toString('base64')]) assert.ok(!text.includes(secret), secret);
});
