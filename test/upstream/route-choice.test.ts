/**
 * flow.route: a hook chooses where a flow goes (direct, an upstream group, one upstream) instead of the route
 * rules, for plain requests and CONNECT tunnels alike; a choice that names nothing configured fails closed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Addon } from '../../src/index.js';
import { curl } from '../helpers/clients.js';
import { startOrigin, startProxy, startTlsOrigin } from '../helpers/servers.js';
import { testCertificates } from '../helpers/test-ca.js';
import { startCountingProxy } from '../helpers/upstream-proxies.js';

test('a hook routes by request: to a group, to one upstream, or direct; CONNECT too', async (t) => {
  const certs = testCertificates();
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const tlsOrigin = await startTlsOrigin(t, certs, (_req, res) => res.end('secure'));
  const a = await startCountingProxy(t);
  const b = await startCountingProxy(t);
  const router: Addon = {
    name: 'router',
    requestHeaders(flow) {
      const pool = flow.clientRequest.headers.get('x-pool');
      if (pool === 'direct') flow.route = 'direct';
      else if (pool === 'b-by-id') flow.route = { upstream: `http://127.0.0.1:${b.port}` };
      else if (pool !== undefined) flow.route = { group: pool };
    },
    connect(flow) {
      flow.route = { group: 'b' };
    },
  };
  const { url } = await startProxy(t, { upstreams: [{ url: a.url, group: 'a' }, { url: b.url, group: 'b' }], addons: [router] });
  for (const pool of ['a', 'b', 'b-by-id', 'direct']) assert.equal((await curl(['-x', url, '-H', `X-Pool: ${pool}`, `${origin.url}/${pool}`])).stdout, 'ok');
  assert.deepEqual(a.requests, [`${origin.url}/a`]);
  assert.deepEqual(b.requests, [`${origin.url}/b`, `${origin.url}/b-by-id`]);
  assert.equal((await curl(['-x', url, '--cacert', certs.caCertPath, `${tlsOrigin.url}/`])).stdout, 'secure');
  assert.deepEqual(b.connects, [`localhost:${tlsOrigin.port}`]);
  assert.deepEqual(a.connects, []);
});

test('a route naming a group or upstream that is not configured fails the flow closed: 500 proxy_configuration_error', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { url } = await startProxy(t, { addons: [{ name: 'router', requestHeaders(flow) {
    flow.route = flow.request.path === '/group' ? { group: 'nowhere' } : { upstream: 'http://127.0.0.1:1' };
  }, connect(flow) {
    flow.route = { group: 'nowhere' };
  } }] });
  for (const path of ['/group', '/upstream']) {
    const result = await curl(['-x', url, '-i', `${origin.url}${path}`]);
    assert.match(result.stdout, /^HTTP\/1\.1 500 /, path);
    assert.match(result.stdout, /error=proxy_configuration_error; details="flow\.route names upstream/);
  }
  const tunnel = await curl(['-x', url, '-p', '-v', `${origin.url}/`]);
  assert.match(tunnel.stderr, /< HTTP\/1\.1 500 /);
});
