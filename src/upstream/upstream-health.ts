/**
 * Per-upstream health: a circuit breaker with exponential back-off plus a 429 cooldown. Failover happens in the
 * request path (like undici's BalancedPool), so there is no separate checker: once the back-off has passed, the
 * next request is let through as a probe, and its outcome closes the circuit or opens it for twice as long. Pure:
 * the caller passes the clock.
 */
export interface HealthOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** First open period; doubles on each re-open, up to maxOpenMs. */
  baseOpenMs: number;
  maxOpenMs: number;
  /** Cooldown after a 429 without a usable Retry-After. */
  defaultCooldownMs: number;
  maxCooldownMs: number;
}

export const DEFAULT_HEALTH_OPTIONS: HealthOptions = {
  failureThreshold: 3,
  baseOpenMs: 1000,
  maxOpenMs: 60_000,
  defaultCooldownMs: 30_000,
  maxCooldownMs: 600_000,
};

export type Availability = { available: true; probe: boolean } | { available: false; reason: string };

export class UpstreamHealth {
  readonly #options: HealthOptions;
  #consecutiveFailures = 0;
  #opens = 0;
  #openUntil = 0;
  #cooldownUntil = 0;
  #probing = false;

  constructor(options: HealthOptions = DEFAULT_HEALTH_OPTIONS) {
    this.#options = options;
  }

  availability(now: number): Availability {
    if (this.#cooldownUntil > now) return { available: false, reason: `cooling down after 429 for ${this.#cooldownUntil - now} ms` };
    if (this.#openUntil === 0) return { available: true, probe: false };
    if (this.#openUntil > now) return { available: false, reason: `circuit open for ${this.#openUntil - now} ms after repeated failures` };
    if (this.#probing) return { available: false, reason: 'circuit half-open, a probe is in flight' };
    return { available: true, probe: true };
  }

  /** Marks the start of a probe request, so only one goes through a half-open circuit at a time. */
  startProbe(): void {
    this.#probing = true;
  }

  recordSuccess(): void {
    this.#consecutiveFailures = 0;
    this.#opens = 0;
    this.#openUntil = 0;
    this.#probing = false;
  }

  recordFailure(now: number): void {
    this.#consecutiveFailures++;
    if (this.#probing || this.#consecutiveFailures >= this.#options.failureThreshold) {
      this.#opens++;
      const backoff = Math.min(this.#options.baseOpenMs * 2 ** (this.#opens - 1), this.#options.maxOpenMs);
      this.#openUntil = now + backoff;
      this.#consecutiveFailures = 0;
      this.#probing = false;
    }
  }

  /**
   * The route failed for a reason that says nothing about this upstream (the target refused, timed out, did not
   * resolve): no count changes, but a probe in flight is over, so the next request may probe again.
   */
  recordInconclusive(): void {
    this.#probing = false;
  }

  /** A 429: keep traffic away for Retry-After (seconds), or the default cooldown; not a health failure. */
  recordTooManyRequests(now: number, retryAfterMs: number | undefined): void {
    const wait = Math.min(retryAfterMs ?? this.#options.defaultCooldownMs, this.#options.maxCooldownMs);
    this.#cooldownUntil = Math.max(this.#cooldownUntil, now + wait);
    this.#probing = false;
  }
}

/** Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), in ms from `now`. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
