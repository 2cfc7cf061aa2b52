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
 */
function routeRequestFor(flow: Flow, target: { scheme: 'http' | 'https'; host: string; port: number }): RouteRequest {
  let proxyUser: string | undefined | null = null;
  return {
    scheme: target.scheme,
    host: target.host,
    port: target.port,
    clientAddress: flow.client.remoteAddress,
    get proxyUser() {
      if (proxyUser === null) proxyUser = proxyUserOf(flow.clientRequest.headers);
      return proxyUser;
    },
  };
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
    this.#request = routeRequestFor(flow, target);
    const plan = planner.plan(this.#request, Date.now());
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

  /** The route failed before the flow was served; an upstream that answered 429 is cooled down, not distrusted. */
  failed(route: Route, error: ProxyError): void {
    const health = error.upstreamStatus === 429 ? { tooManyRequests: error.retryAfterMs } : ('failure' as const);
    this.#planner.report(route, health, this.#request, Date.now());
    this.#flow.routeAttempts.push({ route: route.id, outcome: 'failed', reason: error.message });
  }
}
