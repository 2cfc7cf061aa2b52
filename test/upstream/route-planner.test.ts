import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RoutePlanner, type RouteRequest, type RoutingOptions } from '../../src/upstream/route-planner.js';

function planner(over: Partial<RoutingOptions>): RoutePlanner {
  return new RoutePlanner({
    upstreams: [],
    upstreamEnv: undefined,
    strategy: 'round-robin',
    stickyTtlMs: 1000,
    routes: [],
    bind: [],
    upstreamAttempts: 3,
    health: { failureThreshold: 1, baseOpenMs: 1000, maxOpenMs: 1000, defaultCooldownMs: 5000, maxCooldownMs: 5000 },
    ...over,
  });
}

const req = (host: string, scheme: 'http' | 'https' = 'http', port = 80): RouteRequest => ({ scheme, host, port, clientAddress: '192.0.2.1', proxyUser: undefined });
const ids = (p: RoutePlanner, r: RouteRequest, now = 0): string[] => p.plan(r, now).routes.map((route) => route.id);

test('no upstreams: everything goes direct, rotating --bind addresses', () => {
  const p = planner({ bind: ['192.0.2.10', '192.0.2.11'] });
  const locals = [0, 1, 2].map(() => p.plan(req('a.example'), 0).routes[0]);
  assert.deepEqual(locals.map((r) => (r?.kind === 'direct' ? r.localAddress : 'x')), ['192.0.2.10', '192.0.2.11', '192.0.2.10']);
});

test('rules route by host pattern and CIDR to a group or direct; the rest to "default"', () => {
  const p = planner({
    upstreams: ['http://d1.example:1', { url: 'http://e1.example:1', group: 'exits' }],
    routes: [
      { match: ['*.internal.example', '10.0.0.0/8'], via: 'direct' },
      { match: 'crawl.example', via: 'exits' },
    ],
  });
  assert.deepEqual(ids(p, req('db.internal.example')), ['direct']);
  assert.deepEqual(ids(p, req('10.1.1.1')), ['direct']);
  assert.deepEqual(ids(p, req('www.crawl.example')), ['http://e1.example:1']);
  assert.deepEqual(ids(p, req('other.example')), ['http://d1.example:1']);
});

test('a route to an unknown group is refused at construction', () => {
  assert.throws(() => planner({ upstreams: ['http://a.example:1'], routes: [{ match: '*', via: 'nope' }] }), /no upstream is in that group/);
});

test('attempts are capped and a failed upstream is skipped with its reason until its back-off passes', () => {
  const p = planner({ upstreams: ['http://a.example:1', 'http://b.example:1', 'http://c.example:1', 'http://d.example:1'], upstreamAttempts: 2 });
  const first = p.plan(req('x.example'), 0);
  assert.equal(first.routes.length, 2);
  const failed = first.routes[0]!;
  p.begin(failed, 0);
  p.report(failed, 'failure', req('x.example'), 0);
  for (let i = 0; i < 4; i++) assert.ok(!ids(p, req('x.example'), 500).includes(failed.id));
  const skipped = p.plan(req('x.example'), 500).skipped;
  assert.equal(skipped.length, 1);
  assert.match(skipped[0]!.reason!, /circuit open/);
  assert.equal(p.plan(req('x.example'), 1000).skipped.length, 0, 'back in after the back-off, as a probe');
});

test('upstreams from the environment: per scheme, NO_PROXY honoured', () => {
  const p = planner({ upstreamEnv: { http_proxy: 'http://p.example:3128', https_proxy: 'socks5h://s.example:1080', no_proxy: 'local.example' } });
  assert.deepEqual(ids(p, req('a.example')), ['http://p.example:3128']);
  assert.deepEqual(ids(p, req('a.example', 'https', 443)), ['socks5h://s.example:1080']);
  assert.deepEqual(ids(p, req('local.example')), ['direct']);
});

test('a sticky client that failed over stays with the upstream that served it', () => {
  const p = planner({ upstreams: ['http://a.example:1', 'http://b.example:1'], strategy: 'sticky-client', health: undefined });
  const [first, second] = p.plan(req('x.example'), 0).routes;
  p.begin(first!, 0);
  p.report(first!, 'failure', req('x.example'), 0);
  p.begin(second!, 0);
  p.report(second!, 'success', req('x.example'), 0);
  assert.equal(ids(p, req('x.example'), 1)[0], second!.id);
});
