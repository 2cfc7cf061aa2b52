/**
 * Failures that say nothing about an upstream's health must not count against it: otherwise one client can open
 * every circuit of a pool (a few CONNECTs to a name that does not exist) and every other client gets 503. Each
 * case below sends more such failures than the circuit threshold (3) through every upstream of a pool, then
 * checks that the next client is served through the pool with no upstream skipped.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Flow } from '../../src/index.js';
import { curl } from '../helpers/clients.js';
import { startOrigin, startProxy, startTlsOrigin, waitFor } from '../helpers/servers.js';
import { testCertificates } from '../helpers/test-ca.js';
import { startCountingProxy, startSocksServer } from '../helpers/upstream-proxies.js';

const BAD_ROUNDS = 8;

function recordFlows(): { flows: Flow[]; addon: { name: string; response: (f: Flow) => void; tunnelClosed: (f: Flow) => void; error: (f: Flow) => void } } {
  const flows: Flow[] = [];
  const push = (f: Flow): void => void flows.push(f);
  return { flows, addon: { name: 'record', response: push, tunnelClosed: push, error: push } };
}

function skippedRoutes(flows: Flow[]): string[] {
  return flows.flatMap((f) => f.routeAttempts.filter((a) => a.outcome === 'skipped').map((a) => `${a.route}: ${a.reason ?? ''}`));
}

test('CONNECTs to a name that does not exist (the upstreams answer 502) leave a healthy pool in service', async (t) => {
  const certs = testCertificates();
  const tlsOrigin = await startTlsOrigin(t, certs, (_req, res) => res.end('secure'));
  const pool = [await startCountingProxy(t), await startCountingProxy(t)];
  const { flows, addon } = recordFlows();
  const { url } = await startProxy(t, { upstreams: pool.map((p) => p.url), addons: [addon] });
  for (let i = 0; i < BAD_ROUNDS; i++) {
    const bad = await curl(['-x', url, '-p', '-i', 'https://nonexistent.invalid/']);
    assert.match(bad.stdout + bad.stderr, /502/);
  }
  assert.ok(pool.every((p) => p.connects.length >= BAD_ROUNDS / 2), 'every upstream was asked');
  const good = await curl(['-x', url, '--cacert', certs.caCertPath, `${tlsOrigin.url}/`]);
  assert.equal(good.stdout, 'secure', good.stderr);
  await waitFor(() => flows.length === BAD_ROUNDS + 1);
  assert.deepEqual(skippedRoutes(flows), []);
});

test('an origin that times out behind a healthy upstream does not take the upstream out', async (t) => {
  const slow = await startOrigin(t, () => undefined);
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const upstream = await startCountingProxy(t);
  const { flows, addon } = recordFlows();
  const { url } = await startProxy(t, { upstreams: [upstream.url], responseTimeoutMs: 150, addons: [addon] });
  for (let i = 0; i < BAD_ROUNDS / 2; i++) assert.match((await curl(['-x', url, '-i', `${slow.url}/`])).stdout, /^HTTP\/1\.1 504 /);
  assert.equal((await curl(['-x', url, `${origin.url}/`])).stdout, 'ok');
  await waitFor(() => flows.length === BAD_ROUNDS / 2 + 1);
  assert.deepEqual(skippedRoutes(flows), []);
});

test('a socks5h upstream that cannot resolve the origin\'s name (its refusal reply) stays in service', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const socks = await startSocksServer(t);
  const { flows, addon } = recordFlows();
  const { url } = await startProxy(t, { upstreams: [`socks5h://127.0.0.1:${socks.port}`], addons: [addon] });
  for (let i = 0; i < BAD_ROUNDS / 2; i++) assert.match((await curl(['-x', url, '-i', 'http://nonexistent.invalid/'])).stdout, /^HTTP\/1\.1 502 /);
  assert.equal((await curl(['-x', url, `${origin.url}/`])).stdout, 'ok');
  await waitFor(() => flows.length === BAD_ROUNDS / 2 + 1);
  assert.deepEqual(skippedRoutes(flows), []);
});

test('the upstream\'s own failures still count: refusing our credentials (407) opens its circuit', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const refusing = await startCountingProxy(t, { mode: 'status-407' });
  const good = await startCountingProxy(t);
  const { flows, addon } = recordFlows();
  const { url } = await startProxy(t, { upstreams: [refusing.url, good.url], strategy: 'primary-backup', addons: [addon] });
  for (let i = 0; i < 5; i++) assert.equal((await curl(['-x', url, `${origin.url}/`])).stdout, 'ok');
  await waitFor(() => flows.length === 5);
  assert.equal(refusing.authorizations.length, 3, 'asked until the circuit opened');
  assert.match(skippedRoutes(flows).join('\n'), /circuit open/);
});
