/**
 * Opens a byte stream to a flow's target along the planned routes, failing over from one route to the next
 * (a failed dial, or a CONNECT answered with anything but 2xx, consumed nothing, so the next route is always
 * safe). Records every route tried on the flow and reports outcomes to the planner's health tracking.
 */
import type { Socket } from 'node:net';
import { ProxyError, toProxyError } from '../core/errors.js';
import type { Flow } from '../core/flow.js';
import type { ProxyRuntime } from '../runtime.js';
import { connectThrough } from '../upstream/connect-through.js';
import { FlowRoutes } from '../upstream/flow-routes.js';
import type { Route } from '../upstream/route-planner.js';
import type { ReadRelay } from './read-relay.js';

export interface DialedRoute {
  socket: Socket;
  route: Route;
}

function forwardedVia(flow: Flow, pseudonym: string): string {
  return [...flow.clientRequest.headers.getAll('via'), `1.1 ${pseudonym}`].join(', ');
}

export async function dialAlongPlan(
  runtime: ProxyRuntime,
  flow: Flow,
  target: { scheme: 'http' | 'https'; host: string; port: number },
  reader?: ReadRelay,
): Promise<DialedRoute> {
  const routes = new FlowRoutes(runtime.routes, flow, target);
  let lastError: ProxyError | undefined;
  for (const route of routes.routes) {
    if (runtime.shutdownSignal.aborted) break;
    routes.begin(route);
    try {
      const socket = await connectThrough(route, target, {
        connectTimeoutMs: runtime.options.connectTimeoutMs,
        tls: runtime.originTls,
        dialer: runtime.dialer,
        signal: runtime.shutdownSignal,
        reader,
        guard: route.kind === 'direct' ? runtime.guardFor(flow) : undefined,
        via: route.kind === 'direct' ? undefined : forwardedVia(flow, runtime.pseudonym),
        proxyHeader: route.kind === 'direct' ? undefined : runtime.upstreamProxyHeader?.(flow.client),
      });
      routes.served(route);
      flow.upstream = route.id;
      // The route stays busy (for least-busy) as long as the tunnel over it is open; direct routes are never busy.
      if (route.kind !== 'direct') socket.on('close', () => routes.release(route));
      return { socket, route };
    } catch (err) {
      const error = toProxyError(err, 'connection_refused');
      routes.failed(route, error);
      routes.release(route);
      lastError = error;
      // A loop back to this proxy, or a destination the proxy refuses, is a property of the target, not of the route.
      if (error.refusedByProxy) break;
    }
  }
  throw lastError ?? routes.noRoute();
}
