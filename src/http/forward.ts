/**
 * Sends a flow's request along its route (direct, or through upstream proxies with failover) and streams the
 * response back, both bodies with back-pressure, never holding a whole body. Framing is re-derived on each side:
 * Transfer-Encoding is hop-by-hop, so a chunked request is re-chunked by Node towards the origin and a chunked
 * response towards the client (or close-delimited for an HTTP/1.0 client).
 *
 *   client ──req──▶ getaway ──upstreamReq──▶ origin  (or ──▶ upstream proxy ──▶ origin)
 *   client ◀──res── getaway ◀──upstreamRes── origin
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions, type ServerResponse } from 'node:http';
import { request as httpsRequest, type RequestOptions as HttpsRequestOptions } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { ProxyError, toProxyError } from '../core/errors.js';
import type { DestinationGuard } from '../core/destination.js';
import type { HttpFlow } from '../core/flow.js';
import type { HeaderList } from '../core/header-list.js';
import type { ProxyRuntime } from '../runtime.js';
import { forwardsInAbsoluteForm } from '../upstream/route-agents.js';
import { FlowRoutes } from '../upstream/flow-routes.js';
import type { Route } from '../upstream/route-planner.js';
import { parseRetryAfter } from '../upstream/upstream-health.js';
import { proxyAuthorization } from '../upstream/upstream-proxy.js';
import type { BodyTap } from '../core/body-tap.js';
import { exchangeDirect } from './origin-exchange.js';
import { relayResponse } from './relay-response.js';
import { isResponseHeadParserAvailable as isDirectExchangeAvailable } from './response-head-parser.js';
import { EMPTY_BODY, relayTapped } from './tapped-relay.js';
import { formatAbsoluteUrl } from './request-target.js';

const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function requestHasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

/**
 * The outbound message is framed as llhttp parsed the inbound one, whatever hooks did to the fields: a length that
 * differs from the body relayed (or a body with no length) would let the origin read body bytes as the next
 * request on a pooled connection. Transfer-Encoding is added when the head is written (openUpstreamRequest, or
 * formatRequestHead for the direct exchange).
 */
function frameAsParsed(headers: HeaderList, req: IncomingMessage, body: BodyState): void {
  headers.delete('transfer-encoding');
  const length = req.headers['content-length'];
  if (length === undefined || body.chunked) headers.delete('content-length');
  else headers.set('Content-Length', length);
}

/**
 * Whether a request whose pooled connection turned out stale may go again on a fresh one: it sent nothing
 * irreplaceable (no body, an idempotent method) and the client still waits. The retry is the same route, not failover.
 */
export function mayResendFresh(flow: HttpFlow, body: BodyState, res: ServerResponse): boolean {
  return !body.hasBody && IDEMPOTENT.has(flow.request.method) && !res.destroyed;
}

/** How one route did: the response went out, or it failed before any byte of a response reached the client. */
export type AttemptResult =
  | { kind: 'done' }
  | { kind: 'failed'; error: ProxyError; requestSent: boolean };

/** What an attempt needs to know about the request body across attempts. */
export interface BodyState {
  readonly hasBody: boolean;
  readonly chunked: boolean;
  /** Set once the body started flowing to some upstream: from then on no other route can be tried. */
  consumed: boolean;
  /** The client sent Expect: 100-continue, so the origin's 100 is relayed. */
  readonly expectsContinue: boolean;
}

/**
 * Opens the request along `route` with the flow's outbound head. Does not send anything yet. Options are one
 * literal with optional fields assigned after (no spreads): this runs per request.
 */
function openUpstreamRequest(runtime: ProxyRuntime, flow: HttpFlow, route: Route, body: BodyState, guard: DestinationGuard): ClientRequest {
  const { request } = flow;
  const raw = request.headers.toRaw();
  if (body.chunked) raw.push('Transfer-Encoding', 'chunked');
  const https = request.scheme === 'https';
  // Host is always in `raw` (set from the request target); node must not add its own.
  const options: RequestOptions = {
    method: request.method,
    host: request.host,
    port: request.port,
    path: request.path,
    headers: raw,
    setHost: false,
    timeout: runtime.options.responseTimeoutMs,
    agent: undefined,
  };
  if (route.kind === 'direct') {
    options.agent = https ? runtime.httpsAgent : runtime.httpAgent;
    if (isIP(request.host) === 0) {
      // Whether an address is this proxy depends on the port too; IP literals were checked before dialling.
      options.lookup = runtime.resolver.lookupFor(guard, request.port);
      // Trust comes from the https agent (originTrust); SNI per request, since one agent serves every host.
      if (https) (options as HttpsRequestOptions).servername = request.host;
    }
    if (route.localAddress !== undefined) options.localAddress = route.localAddress;
    return https ? httpsRequest(options) : httpRequest(options);
  }
  const { agent, absoluteForm } = runtime.routeAgents.agentFor(route, request.scheme, flow.client);
  options.agent = agent;
  if (!absoluteForm) return httpRequest(options);
  // Credentials for the upstream go on this hop only; the client's own Proxy-Authorization was removed as hop-by-hop.
  const authorization = proxyAuthorization(route.upstream);
  if (authorization !== undefined) raw.push('Proxy-Authorization', authorization);
  const upstream = route.upstream;
  options.host = upstream.host;
  options.port = upstream.port;
  options.path = formatAbsoluteUrl(request);
  return upstream.protocol === 'https' ? httpsRequest(options) : httpRequest(options);
}

/**
 * Fails the request with 408 when the client stops sending its body for `idleMs`. Time the stream spends paused
 * does not count: pipe() pauses the client for back-pressure when the origin reads slowly, which is the origin's
 * silence (bounded by responseTimeoutMs), not the client's.
 */
export function watchBodyIdle(req: IncomingMessage, idleMs: number, isHeldBack: () => boolean, onIdle: (err: ProxyError) => void): NodeJS.Timeout {
  const timer = setTimeout(function checkBodyIdle() {
    if (isHeldBack()) {
      timer.refresh();
      return;
    }
    onIdle(new ProxyError('http_request_error', `client sent no request body bytes for ${idleMs} ms`, { status: 408 }));
  }, idleMs);
  const stop = (): void => clearTimeout(timer);
  req.once('end', stop);
  req.once('close', stop);
  return timer;
}

/**
 * Sends the request body through the flow's taps (tapped-relay.ts); a request without a body gives them only
 * `end`. A tap that fails, like a broken body, destroys the origin request with the reason, so the attempt fails.
 */
function sendTapped(runtime: ProxyRuntime, flow: HttpFlow, req: IncomingMessage, upstreamReq: ClientRequest, body: BodyState, taps: readonly BodyTap[]): void {
  if (body.hasBody) body.consumed = true;
  const holding = { value: false };
  const idle = body.hasBody ? watchBodyIdle(req, runtime.options.requestBodyIdleTimeoutMs, () => holding.value, (err) => upstreamReq.destroy(err)) : undefined;
  const source = body.hasBody ? req : EMPTY_BODY;
  relayTapped(source, upstreamReq, taps, (length) => {
    flow.bytes.requestBody += length;
    idle?.refresh();
  }, { mode: 'request', holding }).catch((err: unknown) => {
    if (idle !== undefined) clearTimeout(idle);
    upstreamReq.destroy(toProxyError(err, 'http_request_error'));
  });
}

/**
 * Calls `send` once the request's connection is ready (TLS included), so a route that cannot be reached has
 * consumed nothing of the body and the next route can still be tried. Rejects the request on connect timeout.
 */
function whenConnected(runtime: ProxyRuntime, flow: HttpFlow, upstreamReq: ClientRequest, reuseGuard: DestinationGuard | undefined, send: () => void): void {
  upstreamReq.once('socket', (socket: Socket) => {
    // The DNS-time checks ran for the flow that opened a pooled connection; this flow's own run on its peer.
    if (reuseGuard !== undefined && upstreamReq.reusedSocket) {
      const refused = reuseGuard(socket.remoteAddress ?? '', flow.request.port);
      if (refused !== undefined) {
        upstreamReq.destroy(refused);
        return;
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const ready = (): void => {
      clearTimeout(timer);
      flow.timestamps.upstreamConnected = Date.now();
      send();
    };
    // A pooled socket (or one an agent hands over already tunnelled) is ready; a new one is not until TCP, and
    // TLS for https://, are up.
    if (!socket.connecting) {
      ready();
      return;
    }
    const { connectTimeoutMs } = runtime.options;
    timer = setTimeout(() => {
      upstreamReq.destroy(new ProxyError('connection_timeout', `no connection to ${flow.request.host}:${flow.request.port} within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    socket.once('encrypted' in socket ? 'secureConnect' : 'connect', ready);
    socket.once('close', () => clearTimeout(timer));
  });
}

function attempt(
  runtime: ProxyRuntime,
  flow: HttpFlow,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  body: BodyState,
  guard: DestinationGuard,
  mayRetry: boolean,
): Promise<AttemptResult> {
  const { request } = flow;
  if (route.kind === 'direct' && isDirectExchangeAvailable()) {
    return exchangeDirect(runtime, flow, req, res, { body, guard, localAddress: route.localAddress, mayRetry, fresh: false });
  }
  return new Promise<AttemptResult>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: AttemptResult | ProxyError): void => {
      if (settled) return;
      settled = true;
      res.removeListener('close', clientGone);
      if (outcome instanceof ProxyError) reject(outcome);
      else resolve(outcome);
    };
    const upstreamReq = openUpstreamRequest(runtime, flow, route, body, guard);
    function clientGone(): void {
      if (res.writableFinished) return;
      upstreamReq.destroy();
      settle(new ProxyError('client_aborted', 'client closed the connection before the response was complete'));
    }
    res.on('close', clientGone);
    flow.setKillHandler(() => {
      upstreamReq.destroy();
      res.destroy();
    });

    let requestSent = false;
    let responded = false;
    // Destroying the request surfaces downstream as a generic reset; remember why we did it.
    let timedOut: ProxyError | undefined;
    // An IP literal was checked for this flow before the attempt, and a pooled connection to it has that peer.
    const reuseGuard = route.kind === 'direct' && runtime.hooks.has('dialing') && isIP(request.host) === 0 ? guard : undefined;
    whenConnected(runtime, flow, upstreamReq, reuseGuard, () => {
      requestSent = true;
      const taps = flow.requestTaps;
      if (taps !== undefined) {
        sendTapped(runtime, flow, req, upstreamReq, body, taps);
        return;
      }
      if (body.hasBody) {
        body.consumed = true;
        const idle = watchBodyIdle(req, runtime.options.requestBodyIdleTimeoutMs, () => req.readableFlowing === false, (err) => upstreamReq.destroy(err));
        req.on('data', (chunk: Buffer) => {
          flow.bytes.requestBody += chunk.length;
          idle.refresh();
        });
        req.pipe(upstreamReq);
      } else upstreamReq.end();
    });
    if (body.expectsContinue) {
      upstreamReq.on('information', (info) => {
        if (info.statusCode === 100 && !res.headersSent) res.writeContinue();
      });
    }
    upstreamReq.on('timeout', () => {
      timedOut = responded
        ? new ProxyError('connection_read_timeout', `origin sent nothing for ${runtime.options.responseTimeoutMs} ms`)
        : new ProxyError('http_response_timeout', `no response head within ${runtime.options.responseTimeoutMs} ms`);
      upstreamReq.destroy(timedOut);
    });
    upstreamReq.on('error', (err) => {
      if (responded) return; // the response pipeline reports it
      let error = toProxyError(err, 'connection_terminated');
      // Before the request went out, an upstream that forwards in absolute form failed to take a connection: its own
      // fault. Tunnelling routes say for themselves (connect-through.ts); after sending, a silent or closed upstream
      // may only be passing on its origin's failure.
      if (!requestSent && route.kind === 'upstream' && forwardsInAbsoluteForm(route, request.scheme)) error = error.blamingUpstream();
      // A pooled connection the origin closed while idle fails on first use; a request that sent nothing
      // irreplaceable may go again on a fresh connection (what browsers and undici do). Not a route failure.
      // An origin that stayed silent past the response timeout closed nothing: it gets no second request, and the
      // client no second wait.
      const stalePooledConnection = upstreamReq.reusedSocket && timedOut === undefined && !error.refusedByProxy;
      if (stalePooledConnection && mayRetry && mayResendFresh(flow, body, res)) {
        attempt(runtime, flow, req, res, route, body, guard, false).then(settle, settle);
        return;
      }
      settle({ kind: 'failed', error, requestSent });
    });
    upstreamReq.on('response', (upstreamRes: IncomingMessage) => {
      responded = true;
      const status = upstreamRes.statusCode ?? 0;
      // An upstream proxy that refuses us (407) or sheds load (429) has not forwarded anything: fail over if the
      // body is still ours to send elsewhere.
      if (route.kind === 'upstream' && (status === 407 || status === 429) && !body.consumed) {
        upstreamRes.resume();
        upstreamReq.destroy();
        const retryAfter = parseRetryAfter(upstreamRes.headers['retry-after'], Date.now());
        settle({
          kind: 'failed',
          error: new ProxyError('connection_refused', `upstream ${route.id} answered ${status}`, {
            status: status === 429 ? 429 : 502,
            upstreamStatus: status,
            retryAfterMs: retryAfter,
            upstreamFault: status === 407,
          }),
          requestSent: false,
        });
        return;
      }
      relayResponse(runtime, flow, req, res, upstreamRes).then(
        () => settle({ kind: 'done' }),
        (err: unknown) => {
          upstreamReq.destroy();
          settle(timedOut ?? toProxyError(err, 'http_response_incomplete'));
        },
      );
    });
  });
}

/**
 * Forwards the request and streams the response. Resolves once the client has the whole response; rejects with
 * a ProxyError otherwise. If it rejects before the response head was written, the caller still owns `res`.
 * Routes are tried in the planner's order while that is safe: a route that could not be reached consumed
 * nothing, and one that failed after the request went out is retried only for idempotent requests without body.
 */
export async function forwardRequest(runtime: ProxyRuntime, flow: HttpFlow, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { request } = flow;
  const routes = new FlowRoutes(runtime.routes, flow, request);
  if (routes.routes.length === 0) throw routes.noRoute();
  const body: BodyState = {
    hasBody: requestHasBody(req),
    chunked: req.headers['transfer-encoding'] !== undefined,
    consumed: false,
    expectsContinue: req.headers.expect !== undefined,
  };
  frameAsParsed(request.headers, req, body);
  let lastError: ProxyError | undefined;
  const guard = runtime.guardFor(flow);
  for (const route of routes.routes) {
    if (route.kind === 'direct' && isIP(request.host) !== 0) {
      const refused = guard(request.host, request.port);
      if (refused) throw refused;
    }
    flow.upstream = route.id;
    routes.begin(route);
    let result: AttemptResult;
    try {
      result = await attempt(runtime, flow, req, res, route, body, guard, true);
    } catch (err) {
      // The origin answered through this route; what broke afterwards is no reason to distrust the route.
      routes.served(route);
      routes.release(route);
      throw err;
    }
    routes.release(route);
    if (result.kind === 'done') {
      routes.served(route);
      return;
    }
    routes.failed(route, result.error);
    lastError = result.error;
    const safeToRetry = !result.error.refusedByProxy && !body.consumed && (!result.requestSent || IDEMPOTENT.has(request.method));
    if (!safeToRetry || res.destroyed) break;
  }
  throw lastError ?? new ProxyError('proxy_internal_error', 'no route was tried');
}
