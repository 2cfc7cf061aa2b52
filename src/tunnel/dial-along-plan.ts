/**
 * Opens a byte stream to a flow's target along the planned routes, failing over from one route to the next
 * (a failed dial, or a CONNECT answered with anything but 2xx, consumed nothing, so the next route is always
 * safe). Records every route tried on the flow and reports outcomes to the planner's health tracking.
 */
import type { Socket } from 'node:net';
import { ProxyError, toProxyError } from '../core/errors.js';
import type { Flow } from '../core/flow.js';
import type { ProxyRuntime } from '../core/runtime.js';
import { connectThrough } from '../upstream/connect-through.js';
import { noRouteAvailable, routeRequestFor, type Route } from '../upstream/route-planner.js';

export interface DialedRoute {
  socket: Socket;
  route: Route;
}

export async function dialAlongPlan(
  runtime: ProxyRuntime,
  flow: Flow,
  target: { scheme: 'http' | 'https'; host: string; port: number },
): Promise<DialedRoute> {
  const request = routeRequestFor(flow, target);
  const plan = runtime.routes.plan(request, Date.now());
  if (plan.skipped.length > 0) flow.routeAttempts.push(...plan.skipped);
  let lastError: ProxyError | undefined;
  for (const route of plan.routes) {
    if (runtime.shutdownSignal.aborted) break;
    runtime.routes.begin(route, Date.now());
    try {
      const socket = await connectThrough(route, target, {
        connectTimeoutMs: runtime.options.connectTimeoutMs,
        dialer: runtime.dialer,
        signal: runtime.shutdownSignal,
      });
      runtime.routes.report(route, 'success', request, Date.now());
      flow.routeAttempts.push({ route: route.id, outcome: 'served' });
      flow.upstream = route.id;
      // The route stays busy (for least-busy) as long as the tunnel over it is open. Direct routes are not counted.
      if (route.kind === 'upstream') socket.once('close', () => runtime.routes.release(route));
      return { socket, route };
    } catch (err) {
      const error = toProxyError(err, 'connection_refused');
      const health = error.upstreamStatus === 429 ? { tooManyRequests: error.retryAfterMs } : ('failure' as const);
      runtime.routes.report(route, health, request, Date.now());
      runtime.routes.release(route);
      flow.routeAttempts.push({ route: route.id, outcome: 'failed', reason: error.message });
      lastError = error;
      // A loop back to this proxy is a property of the target, not of the route: no other route helps.
      if (error.type === 'proxy_loop_detected') break;
    }
  }
  if (lastError !== undefined) throw lastError;
  throw noRouteAvailable(plan.skipped);
}
