import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseUpstreamProxy } from '../../src/upstream/upstream-proxy.js';
import { createStrategyState, DEFAULT_MAX_STICKY_ENTRIES, orderUpstreams, type SelectionInput, type StrategyName } from '../../src/upstream/upstream-strategy.js';

const a = parseUpstreamProxy({ url: 'http://a.example:1', weight: 1 });
const b = parseUpstreamProxy({ url: 'http://b.example:1', weight: 1 });
const c = parseUpstreamProxy({ url: 'http://c.example:1', weight: 1 });
const heavy = parseUpstreamProxy({ url: 'http://heavy.example:1', weight: 5 });

function input(over: Partial<SelectionInput> = {}): SelectionInput {
  return { targetHost: 't.example', clientAddress: '192.0.2.1', proxyUser: undefined, now: 1000, ...over };
}

function firsts(name: StrategyName, candidates = [a, b, c], n = 6, inputs: (i: number) => SelectionInput = () => input(), random?: () => number): string[] {
  const state = createStrategyState({ stickyTtlMs: 10_000, ...(random ? { random } : {}) });
  return Array.from({ length: n }, (_, i) => orderUpstreams(name, candidates, state, inputs(i))[0]!.host);
}

test('round-robin cycles through the pool', () => {
  assert.deepEqual(firsts('round-robin'), ['a.example', 'b.example', 'c.example', 'a.example', 'b.example', 'c.example']);
});

test('round-robin with weights: shares follow weights and picks are spread (smooth WRR)', () => {
  assert.deepEqual(firsts('round-robin', [heavy, b, c], 7), ['heavy.example', 'heavy.example', 'b.example', 'heavy.example', 'c.example', 'heavy.example', 'heavy.example']);
});

test('the failover order holds every candidate once, starting at the pick', () => {
  const state = createStrategyState({ stickyTtlMs: 1 });
  orderUpstreams('round-robin', [a, b, c], state, input());
  assert.deepEqual(orderUpstreams('round-robin', [a, b, c], state, input()).map((u) => u.host), ['b.example', 'c.example', 'a.example']);
});

test('random picks by weight (seeded source, 6000 draws)', () => {
  let seed = 42;
  const lcg = (): number => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296);
  const picks = firsts('random', [heavy, b], 6000, () => input(), lcg);
  const share = picks.filter((h) => h === 'heavy.example').length / picks.length;
  assert.ok(Math.abs(share - 5 / 6) < 0.03, `heavy got ${share}`);
});

test('least-busy prefers the upstream with fewest requests in flight per weight', () => {
  const state = createStrategyState({ stickyTtlMs: 1 });
  state.active.set(a.id, 3);
  state.active.set(b.id, 1);
  state.active.set(c.id, 2);
  assert.deepEqual(orderUpstreams('least-busy', [a, b, c], state, input()).map((u) => u.host), ['b.example', 'c.example', 'a.example']);
});

test('primary-backup keeps the configured order', () => {
  assert.deepEqual(firsts('primary-backup', [a, b, c], 3), ['a.example', 'a.example', 'a.example']);
});

test('sticky-host keeps one exit per target host, different hosts spread', () => {
  const hosts = ['x.example', 'y.example', 'x.example', 'z.example', 'y.example', 'x.example'];
  const picks = firsts('sticky-host', [a, b, c], 6, (i) => input({ targetHost: hosts[i]! }));
  assert.equal(picks[0], picks[2]);
  assert.equal(picks[0], picks[5]);
  assert.equal(picks[1], picks[4]);
  assert.equal(new Set([picks[0], picks[1], picks[3]]).size, 3);
});

test('sticky-client and sticky-user key on the client address and the proxy user', () => {
  const clients = firsts('sticky-client', [a, b, c], 4, (i) => input({ clientAddress: i % 2 === 0 ? '192.0.2.1' : '192.0.2.2' }));
  assert.equal(clients[0], clients[2]);
  assert.equal(clients[1], clients[3]);
  assert.notEqual(clients[0], clients[1]);
  const users = firsts('sticky-user', [a, b, c], 4, (i) => input({ proxyUser: i % 2 === 0 ? 'alice' : 'bob', clientAddress: `192.0.2.${i}` }));
  assert.equal(users[0], users[2]);
  assert.equal(users[1], users[3]);
});

test('a sticky assignment expires after its TTL', () => {
  const state = createStrategyState({ stickyTtlMs: 100 });
  const first = orderUpstreams('sticky-host', [a, b, c], state, input({ now: 0 }))[0];
  orderUpstreams('round-robin', [a, b, c], state, input()); // moves the round-robin on
  assert.equal(orderUpstreams('sticky-host', [a, b, c], state, input({ now: 50 }))[0], first);
  assert.notEqual(orderUpstreams('sticky-host', [a, b, c], state, input({ now: 500 }))[0], first);
});

test('a sticky upstream that is unavailable (not a candidate) is replaced', () => {
  const state = createStrategyState({ stickyTtlMs: 1000 });
  const first = orderUpstreams('sticky-host', [a, b, c], state, input())[0]!;
  const rest = [a, b, c].filter((u) => u !== first);
  assert.notEqual(orderUpstreams('sticky-host', rest, state, input())[0], first);
});

test('the sticky table is a bounded LRU: 30,000 distinct hosts keep it at the cap, and a key in use survives', () => {
  const state = createStrategyState({ stickyTtlMs: 600_000 });
  assert.equal(state.maxStickyEntries, DEFAULT_MAX_STICKY_ENTRIES);
  const kept = orderUpstreams('sticky-host', [a, b, c], state, input({ targetHost: 'kept.example' }))[0]!.host;
  for (let i = 0; i < 30_000; i++) {
    orderUpstreams('sticky-host', [a, b, c], state, input({ targetHost: `h${i}.example`, now: 1000 + i }));
    // The client of kept.example keeps coming back, so its assignment stays among the recently used.
    if (i % 1000 === 0) assert.equal(orderUpstreams('sticky-host', [a, b, c], state, input({ targetHost: 'kept.example', now: 1000 + i }))[0]!.host, kept);
    assert.ok(state.sticky.size <= DEFAULT_MAX_STICKY_ENTRIES);
  }
  assert.equal(state.sticky.size, DEFAULT_MAX_STICKY_ENTRIES);
  assert.ok(state.sticky.has('host:kept.example'), 'recently used key evicted');
  assert.ok(!state.sticky.has('host:h0.example'), 'least recently used key kept');
});
