/**
 * Strategies order the available upstreams of a group for one request: the first is tried first, the rest are
 * the failover order. Each is a small function over plain state, so a table-driven test can pin its behaviour.
 */
import type { UpstreamProxy } from './upstream-proxy.js';

export const STRATEGY_NAMES = ['round-robin', 'random', 'least-busy', 'primary-backup', 'sticky-host', 'sticky-client', 'sticky-user'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface SelectionInput {
  targetHost: string;
  clientAddress: string;
  /** The user name the client authenticated with at this proxy, when proxy auth is on. */
  proxyUser: string | undefined;
  now: number;
}

export interface StrategyState {
  /** Smooth weighted round-robin counters (the nginx algorithm), by upstream id. */
  readonly currentWeights: Map<string, number>;
  /** Requests in flight per upstream id, for least-busy. */
  readonly active: Map<string, number>;
  /** Sticky assignments: key → upstream id and expiry, least recently used first (see rememberSticky). */
  readonly sticky: Map<string, { id: string; expires: number }>;
  readonly random: () => number;
  readonly stickyTtlMs: number;
  /** Most sticky assignments kept; past it the least recently used goes. */
  readonly maxStickyEntries: number;
}

/**
 * Enough for every client of a busy proxy; keys are as long as the target host or user name (the header limits
 * bound them), so the cap bounds memory to a few MiB whatever clients send.
 */
export const DEFAULT_MAX_STICKY_ENTRIES = 10_000;

export function createStrategyState(options: { stickyTtlMs: number; random?: () => number; maxStickyEntries?: number }): StrategyState {
  return {
    currentWeights: new Map(),
    active: new Map(),
    sticky: new Map(),
    random: options.random ?? Math.random,
    stickyTtlMs: options.stickyTtlMs,
    maxStickyEntries: options.maxStickyEntries ?? DEFAULT_MAX_STICKY_ENTRIES,
  };
}

/**
 * A Map keeps insertion order, so deleting and re-inserting on every use makes its first key the least recently
 * used one: evicting it is O(1), where scanning for expired entries was O(n) on every request past the old cap.
 */
export function rememberSticky(state: StrategyState, key: string, id: string, now: number): void {
  const { sticky } = state;
  sticky.delete(key);
  sticky.set(key, { id, expires: now + state.stickyTtlMs });
  if (sticky.size > state.maxStickyEntries) sticky.delete(sticky.keys().next().value!);
}

/**
 * Smooth weighted round-robin: every candidate gains its weight, the richest is chosen and pays the total. With
 * weights 5,1,1 the sequence is a a b a c a a: shares follow the weights and picks are spread out, not bunched.
 */
function weightedRoundRobin(candidates: readonly UpstreamProxy[], state: StrategyState): UpstreamProxy[] {
  let total = 0;
  let best: UpstreamProxy | undefined;
  let bestWeight = -Infinity;
  for (const candidate of candidates) {
    const current = (state.currentWeights.get(candidate.id) ?? 0) + candidate.weight;
    state.currentWeights.set(candidate.id, current);
    total += candidate.weight;
    if (current > bestWeight) {
      bestWeight = current;
      best = candidate;
    }
  }
  if (best === undefined) return [];
  state.currentWeights.set(best.id, bestWeight - total);
  const index = candidates.indexOf(best);
  return [...candidates.slice(index), ...candidates.slice(0, index)];
}

function weightedRandom(candidates: readonly UpstreamProxy[], state: StrategyState): UpstreamProxy[] {
  const remaining = candidates.slice();
  const order: UpstreamProxy[] = [];
  while (remaining.length > 0) {
    const total = remaining.reduce((sum, c) => sum + c.weight, 0);
    let ticket = state.random() * total;
    let index = 0;
    while (index < remaining.length - 1 && ticket >= remaining[index]!.weight) ticket -= remaining[index++]!.weight;
    order.push(...remaining.splice(index, 1));
  }
  return order;
}

function leastBusy(candidates: readonly UpstreamProxy[], state: StrategyState): UpstreamProxy[] {
  // Round-robin first, so ties (most of the time: all idle) spread instead of piling onto the first.
  const rotated = weightedRoundRobin(candidates, state);
  const load = (c: UpstreamProxy): number => (state.active.get(c.id) ?? 0) / c.weight;
  return rotated.map((c, i) => ({ c, i })).sort((x, y) => load(x.c) - load(y.c) || x.i - y.i).map(({ c }) => c);
}

/** What a sticky strategy keeps one exit for: the target host, the client address, or the proxy user. */
export function stickyKey(name: StrategyName, input: Pick<SelectionInput, 'targetHost' | 'clientAddress' | 'proxyUser'>): string {
  if (name === 'sticky-host') return `host:${input.targetHost}`;
  if (name === 'sticky-user' && input.proxyUser !== undefined) return `user:${input.proxyUser}`;
  return `client:${input.clientAddress}`;
}

function sticky(name: StrategyName, candidates: readonly UpstreamProxy[], state: StrategyState, input: SelectionInput): UpstreamProxy[] {
  const key = stickyKey(name, input);
  const assigned = state.sticky.get(key);
  const kept = assigned !== undefined && assigned.expires > input.now ? candidates.find((c) => c.id === assigned.id) : undefined;
  const order = kept !== undefined ? [kept, ...candidates.filter((c) => c !== kept)] : weightedRoundRobin(candidates, state);
  if (order[0] !== undefined) rememberSticky(state, key, order[0].id, input.now);
  return order;
}

/** The try order for one request. `candidates` are the group's available upstreams in configured order. */
export function orderUpstreams(name: StrategyName, candidates: readonly UpstreamProxy[], state: StrategyState, input: SelectionInput): UpstreamProxy[] {
  switch (name) {
    case 'round-robin':
      return weightedRoundRobin(candidates, state);
    case 'random':
      return weightedRandom(candidates, state);
    case 'least-busy':
      return leastBusy(candidates, state);
    case 'primary-backup':
      return candidates.slice();
    case 'sticky-host':
    case 'sticky-client':
    case 'sticky-user':
      return sticky(name, candidates, state, input);
  }
}
