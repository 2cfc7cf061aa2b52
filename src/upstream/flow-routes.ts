/**
 * One flow's walk along its planned routes: planned once, every route skipped, failed or served recorded on the
 * flow, and each outcome reported to the planner's health tracking. Shared by plain requests (http/forward.ts)
 * and tunnels (tunnel/dial-along-plan.ts), which differ only in what an attempt is.
 */
import type { ProxyError } from '../core/errors.js';
import type { Flow } from '../core/flow.js';
import { noRouteAvailable, routeRequestFor, type Route, type RouteAttempt, type RoutePlanner, type RouteRequest } from './route-planner.js';

export type RouteHealth = 'failure' | { tooManyRequests: number | undefined };

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

  /** Every candidate was skipped (circuit open, cooling down). */
  noRoute(): ProxyError {
    return noRouteAvailable(this.#skipped);
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

  failed(route: Route, health: RouteHealth, error: ProxyError): void {
    this.#planner.report(route, health, this.#request, Date.now());
    this.#flow.routeAttempts.push({ route: route.id, outcome: 'failed', reason: error.message });
  }
}
