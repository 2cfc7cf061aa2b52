/**
 * Decides where each request or tunnel goes and in which order to fail over: routing rules pick direct or a
 * group of upstream proxies, health takes broken ones out, the strategy orders the rest. Keeps state (counters,
 * sticky assignments, circuit breakers) but does no IO, so its decisions are testable with a fake clock.
 */
import { envProxyFor, readEnvProxy, type EnvProxySettings } from '../config/env-proxy.js';
import { ProxyError } from '../core/errors.js';
import type { RouteAttempt, RouteChoice } from '../core/flow.js';
import { parseHostPattern, type HostPattern } from '../core/host-pattern.js';
import { UpstreamHealth, type HealthOptions, DEFAULT_HEALTH_OPTIONS } from './upstream-health.js';
import { parseUpstreamProxy, type UpstreamProxy, type UpstreamSpec } from './upstream-proxy.js';
import { createStrategyState, orderUpstreams, rememberSticky, stickyKey, type SelectionInput, type StrategyName, type StrategyState } from './upstream-strategy.js';

export type Route =
  | { readonly kind: 'direct'; readonly id: 'direct'; readonly localAddress: string | undefined }
  | { readonly kind: 'upstream'; readonly id: string; readonly upstream: UpstreamProxy };

export type { RouteAttempt } from '../core/flow.js';

export interface RouteRuleSpec {
  /** Host patterns (see host-pattern.ts): names, "*.suffix", IPs, CIDRs, optional ":port". */
  match: string | string[];
  /** An upstream group name, or "direct". */
  via: string;
}

export interface RoutingOptions {
  upstreams: ReadonlyArray<string | UpstreamSpec>;
  /** When set, upstreams come from these environment variables per request (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY). */
  upstreamEnv: Readonly<Record<string, string | undefined>> | undefined;
  strategy: StrategyName;
  stickyTtlMs: number;
  routes: readonly RouteRuleSpec[];
  /** Local addresses that direct connections rotate through. */
  bind: readonly string[];
  /** Most routes tried for one request or tunnel. */
  upstreamAttempts: number;
  health?: HealthOptions;
  random?: () => number;
}

export interface RouteRequest {
  /** "http" for plain requests; "https" for https:// requests and every CONNECT tunnel. */
  scheme: 'http' | 'https';
  host: string;
  port: number;
  clientAddress: string;
  proxyUser: string | undefined;
}

export interface RoutePlan {
  routes: Route[];
  skipped: RouteAttempt[];
}

interface Rule {
  patterns: HostPattern[];
  via: string;
}

export class RoutePlanner {
  readonly #options: RoutingOptions;
  readonly #upstreams: UpstreamProxy[];
  readonly #groups = new Map<string, UpstreamProxy[]>();
  readonly #health = new Map<string, UpstreamHealth>();
  readonly #rules: Rule[];
  readonly #env: EnvProxySettings | undefined;
  readonly #envUpstreams = new Map<string, UpstreamProxy>();
  readonly #state: StrategyState;
  #nextBind = 0;

  constructor(options: RoutingOptions) {
    this.#options = options;
    this.#upstreams = options.upstreams.map((spec) => parseUpstreamProxy(spec));
    for (const upstream of this.#upstreams) {
      const group = this.#groups.get(upstream.group) ?? [];
      group.push(upstream);
      this.#groups.set(upstream.group, group);
    }
    this.#rules = options.routes.map((rule) => ({
      patterns: (Array.isArray(rule.match) ? rule.match : [rule.match]).map((p) => parseHostPattern(p)),
      via: rule.via,
    }));
    for (const rule of this.#rules) {
      if (rule.via !== 'direct' && !this.#groups.has(rule.via)) throw new Error(`route via "${rule.via}": no upstream is in that group`);
    }
    this.#env = options.upstreamEnv === undefined ? undefined : readEnvProxy(options.upstreamEnv);
    // Parsed here, once: a URL that cannot be used stops the start instead of failing (and being quoted) per request.
    for (const url of [this.#env?.httpProxy, this.#env?.httpsProxy]) {
      if (url !== undefined && !this.#envUpstreams.has(url)) this.#envUpstreams.set(url, parseUpstreamProxy(url));
    }
    this.#state = createStrategyState({ stickyTtlMs: options.stickyTtlMs, ...(options.random ? { random: options.random } : {}) });
  }

  /** `choice` is a hook's decision (flow.route); without one, the rules (or the environment) decide. */
  plan(request: RouteRequest, now: number, choice?: RouteChoice): RoutePlan {
    const candidates = choice === undefined ? this.#candidates(request) : this.#chosen(choice);
    if (candidates === 'direct') return { routes: [this.#direct()], skipped: [] };
    const skipped: RouteAttempt[] = [];
    const available: UpstreamProxy[] = [];
    for (const upstream of candidates) {
      const availability = this.#healthOf(upstream).availability(now);
      if (availability.available) available.push(upstream);
      else skipped.push({ route: upstream.id, outcome: 'skipped', reason: availability.reason });
    }
    const input: SelectionInput = { targetHost: request.host, clientAddress: request.clientAddress, proxyUser: request.proxyUser, now };
    const ordered = orderUpstreams(this.#options.strategy, available, this.#state, input).slice(0, this.#options.upstreamAttempts);
    return { routes: ordered.map((upstream) => ({ kind: 'upstream', id: upstream.id, upstream })), skipped };
  }

  /** Call before using a route: counts it busy and lets a half-open circuit send exactly one probe. */
  begin(route: Route, now: number): void {
    if (route.kind === 'direct') return;
    const health = this.#healthOf(route.upstream);
    const availability = health.availability(now);
    if (availability.available && availability.probe) health.startProbe();
    this.#state.active.set(route.id, (this.#state.active.get(route.id) ?? 0) + 1);
  }

  /** How the route did, once per begin(): feeds the circuit breaker and sticky assignments. */
  report(route: Route, outcome: 'success' | 'failure' | 'inconclusive' | { tooManyRequests: number | undefined }, request: RouteRequest, now: number): void {
    if (route.kind === 'direct') return;
    const health = this.#healthOf(route.upstream);
    if (outcome === 'success') {
      health.recordSuccess();
      this.#restick(route, request, now);
    } else if (outcome === 'failure') health.recordFailure(now);
    else if (outcome === 'inconclusive') health.recordInconclusive();
    else health.recordTooManyRequests(now, outcome.tooManyRequests);
  }

  /** The route is no longer busy with this request or tunnel (least-busy counts until then). Once per begin(). */
  release(route: Route): void {
    if (route.kind === 'direct') return;
    this.#state.active.set(route.id, Math.max(0, (this.#state.active.get(route.id) ?? 1) - 1));
  }

  #candidates(request: RouteRequest): UpstreamProxy[] | 'direct' {
    if (this.#env !== undefined) {
      const url = envProxyFor(this.#env, request.scheme, request.host, request.port);
      return url === undefined ? 'direct' : [this.#envUpstreams.get(url)!];
    }
    for (const rule of this.#rules) {
      if (rule.patterns.some((pattern) => pattern.matches(request.host, request.port))) {
        return rule.via === 'direct' ? 'direct' : this.#groups.get(rule.via)!;
      }
    }
    return this.#upstreams.length === 0 ? 'direct' : (this.#groups.get('default') ?? this.#upstreams);
  }

  #chosen(choice: RouteChoice): UpstreamProxy[] | 'direct' {
    if (choice === 'direct') return 'direct';
    if ('group' in choice) {
      const group = this.#groups.get(choice.group);
      if (group === undefined) throw new ProxyError('proxy_configuration_error', `flow.route names upstream group "${choice.group}", which is not configured`);
      return group;
    }
    const upstream = this.#upstreams.find((u) => u.id === choice.upstream) ?? this.#envUpstreamById(choice.upstream);
    if (upstream === undefined) throw new ProxyError('proxy_configuration_error', `flow.route names upstream "${choice.upstream}", which is not configured`);
    return [upstream];
  }

  #envUpstreamById(id: string): UpstreamProxy | undefined {
    for (const upstream of this.#envUpstreams.values()) if (upstream.id === id) return upstream;
    return undefined;
  }

  #direct(): Route {
    const { bind } = this.#options;
    const localAddress = bind.length === 0 ? undefined : bind[this.#nextBind++ % bind.length];
    return { kind: 'direct', id: 'direct', localAddress };
  }

  #healthOf(upstream: UpstreamProxy): UpstreamHealth {
    let health = this.#health.get(upstream.id);
    if (health === undefined) {
      health = new UpstreamHealth(this.#options.health ?? DEFAULT_HEALTH_OPTIONS);
      this.#health.set(upstream.id, health);
    }
    return health;
  }

  /** A sticky client that failed over keeps the upstream that actually served it. */
  #restick(route: Route, request: RouteRequest, now: number): void {
    const { strategy } = this.#options;
    if (!strategy.startsWith('sticky-')) return;
    const key = stickyKey(strategy, { targetHost: request.host, clientAddress: request.clientAddress, proxyUser: request.proxyUser });
    rememberSticky(this.#state, key, route.id, now);
  }
}
