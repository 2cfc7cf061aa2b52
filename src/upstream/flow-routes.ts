/**
 * One flow's walk along its planned routes: planned once, every route skipped, failed or served recorded on the
 * flow, and each outcome reported to the planner's health tracking. Shared by plain requests (http/forward.ts)
 * and tunnels (tunnel/dial-along-plan.ts), which differ only in what an attempt is.
 */
import { ProxyError } from '../core/errors.js';
import type { Flow } from '../core/flow.js';
import type { Route, RouteAttempt, RoutePlanner, RouteRequest } from './route-planner.js';
import { proxyUserOf } from './upstream-proxy.js';

/**
 * What the planner needs to know about a flow going to `target`. The proxy user is read from Proxy-Authorization
 * only if a sticky strategy asks for it: flows that go direct never do.
 *
 * A class, not an object literal with a getter: V8 gives each such literal a map of its own holding the getter's
 * closure, and maps live in the old generation, so every request's objects (reachable from the closure) survived
 * scavenges and were promoted. `BENCH_GC=1 npm run bench:pair` read about 6 KB promoted per keep-alive request
 * with the literal and almost none with the class (test/core/gc-promotion.test.ts guards it).
 */
class FlowRouteRequest implements RouteRequest {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly port: number;
  readonly clientAddress: string;
  readonly #flow: Flow;
  #proxyUser: string | undefined | null = null;

  constructor(flow: Flow, target: { scheme: 'http' | 'https'; host: string; port: number }) {
    this.scheme = target.scheme;
    this.host = target.host;
    this.port = target.port;
    this.clientAddress = flow.client.remoteAddress;
    this.#flow = flow;
  }

  get proxyUser(): string | undefined {
    // The verified user when proxy auth is on; without it, the Basic name a client presents is a session label it chose.
    if (this.#proxyUser === null) this.#proxyUser = this.#flow.user ?? proxyUserOf(this.#flow.clientRequest.headers);
    return this.#proxyUser;
  }
}

export class FlowRoutes {
  readonly routes: readonly Route[];
  readonly #planner: RoutePlanner;
  readonly #flow: Flow;
  readonly #request: RouteRequest;
  readonly #skipped: readonly RouteAttempt[];

  constructor(planner: RoutePlanner, flow: Flow, target: { scheme: 'http' | 'https'; host: string; port: number }) {
    this.#planner = planner;
    this.#flow = flow;
    this.#request = new FlowRouteRequest(flow, target);
    const plan = planner.plan(this.#request, Date.now(), flow.route);
    if (plan.skipped.length > 0) flow.routeAttempts.push(...plan.skipped);
    this.routes = plan.routes;
    this.#skipped = plan.skipped;
  }

  /** Every candidate was skipped (circuit open, cooling down): say which and why. */
  noRoute(): ProxyError {
    return new ProxyError('destination_unavailable', `no upstream available: ${this.#skipped.map((s) => `${s.route} ${s.reason ?? ''}`).join('; ')}`);
  }

  /** Before using a route: counts it busy and lets a half-open circuit send one probe. */
  begin(route: Route): void {
    this.#planner.begin(route, Date.now());
  }

  /** The route is no longer busy with this flow. Once per begin(). */
  release(route: Route): void {
    this.#planner.release(route);
  }

  served(route: Route): void {
    this.#planner.report(route, 'success', this.#request, Date.now());
    this.#flow.routeAttempts.push({ route: route.id, outcome: 'served' });
  }

  /**
   * The route failed before the flow was served. Only the upstream's own failures (ProxyError.upstreamFault) count
   * against it; an upstream that answered 429 is cooled down, not distrusted.
   */
  failed(route: Route, error: ProxyError): void {
    const health = error.upstreamStatus === 429 ? { tooManyRequests: error.retryAfterMs } : error.upstreamFault ? ('failure' as const) : ('inconclusive' as const);
    this.#planner.report(route, health, this.#request, Date.now());
    this.#flow.routeAttempts.push({ route: route.id, outcome: 'failed', reason: error.message });
  }
}
