/**
 * Request rates and concurrency per client address and per authenticated user: a token bucket per key (`rate`
 * requests a second, bursts of up to `burst`) answers 429 with Retry-After when empty; a cap on flows in progress
 * answers 503 (`connection_limit_reached`, Retry-After 1). Tunnels count as one request for as long as they are open;
 * requests inside an intercepted tunnel count on their own as well.
 */
import type { Addon } from '../core/addon.js';
import { ProxyError } from '../core/errors.js';
import type { Flow } from '../core/flow.js';

export interface RateLimit {
  /** Requests (and CONNECTs) a second, refilled continuously. */
  rate?: number;
  /** Most requests at once after a quiet spell. Default: `rate`, at least 1. */
  burst?: number;
  /** Flows in progress at once (requests being answered, open tunnels). */
  concurrent?: number;
}

export interface RateLimitOptions {
  /** Per client address (the real client behind a PROXY protocol balancer). */
  perClient?: RateLimit;
  /** Per authenticated user; anonymous flows are limited per client only. */
  perUser?: RateLimit;
}

/** Keys remembered at once per limit; the least recently seen go first past it (their buckets were full again). */
const MAX_KEYS = 100_000;

class Limiter {
  readonly #rate: number | undefined;
  readonly #burst: number;
  readonly #concurrent: number | undefined;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #active = new Map<string, number>();

  constructor(limit: RateLimit) {
    this.#rate = limit.rate;
    this.#burst = Math.max(1, limit.burst ?? limit.rate ?? 1);
    this.#concurrent = limit.concurrent;
  }

  /** Takes a token and a slot for `key`, or throws the refusal. */
  admit(key: string, what: string, now: number): void {
    if (this.#concurrent !== undefined && (this.#active.get(key) ?? 0) >= this.#concurrent) {
      throw new ProxyError('connection_limit_reached', `${what} has ${this.#concurrent} requests in progress already`);
    }
    if (this.#rate !== undefined) {
      const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
      bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate);
      bucket.at = now;
      this.#buckets.delete(key);
      this.#buckets.set(key, bucket);
      if (this.#buckets.size > MAX_KEYS) this.#buckets.delete(this.#buckets.keys().next().value!);
      if (bucket.tokens < 1) {
        const retryAfterMs = Math.ceil(((1 - bucket.tokens) / this.#rate) * 1000);
        throw new ProxyError('http_request_denied', `${what} is over ${this.#rate} requests a second`, { status: 429, retryAfterMs });
      }
      bucket.tokens -= 1;
    }
    if (this.#concurrent !== undefined) this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
  }

  release(key: string): void {
    if (this.#concurrent === undefined) return;
    const left = (this.#active.get(key) ?? 1) - 1;
    if (left <= 0) this.#active.delete(key);
    else this.#active.set(key, left);
  }
}

export function rateLimits(options: RateLimitOptions): Addon {
  const perClient = options.perClient === undefined ? undefined : new Limiter(options.perClient);
  const perUser = options.perUser === undefined ? undefined : new Limiter(options.perUser);
  /** The slots a flow holds, released exactly once when it ends. */
  const held = new WeakMap<Flow, Array<[Limiter, string]>>();

  const admit = (flow: Flow): void => {
    const now = Date.now();
    const slots: Array<[Limiter, string]> = [];
    try {
      if (perClient !== undefined) {
        perClient.admit(flow.client.remoteAddress, `client ${flow.client.remoteAddress}`, now);
        slots.push([perClient, flow.client.remoteAddress]);
      }
      if (perUser !== undefined && flow.user !== undefined) {
        perUser.admit(flow.user, `user ${flow.user}`, now);
        slots.push([perUser, flow.user]);
      }
    } catch (err) {
      for (const [limiter, key] of slots) limiter.release(key);
      throw err;
    }
    held.set(flow, slots);
  };
  const release = (flow: Flow): void => {
    const slots = held.get(flow);
    if (slots === undefined) return;
    held.delete(flow);
    for (const [limiter, key] of slots) limiter.release(key);
  };
  return { name: 'rate-limits', requestHeaders: admit, connect: admit, response: release, error: release, tunnelClosed: release };
}

/** Checks a RateLimitOptions value and says what is wrong, key by key. Pure. */
export function checkRateLimits(value: unknown, source: string): string[] {
  if (typeof value !== 'object' || value === null) return [`${source}: expected { perClient, perUser }`];
  const problems: string[] = [];
  for (const [scope, limit] of Object.entries(value)) {
    if (scope !== 'perClient' && scope !== 'perUser') {
      problems.push(`${source}.${scope}: unknown (perClient, perUser)`);
      continue;
    }
    if (typeof limit !== 'object' || limit === null) {
      problems.push(`${source}.${scope}: expected { rate, burst, concurrent }`);
      continue;
    }
    for (const [key, number] of Object.entries(limit as Record<string, unknown>)) {
      if (!['rate', 'burst', 'concurrent'].includes(key)) problems.push(`${source}.${scope}.${key}: unknown (rate, burst, concurrent)`);
      else if (typeof number !== 'number' || !(number > 0) || (key !== 'rate' && !Number.isInteger(number))) {
        problems.push(`${source}.${scope}.${key}: expected a positive ${key === 'rate' ? 'number' : 'integer'}`);
      }
    }
  }
  return problems;
}
