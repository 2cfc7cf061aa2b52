/**
 * Sends a flow's request to the origin and streams the response back, both bodies with back-pressure
 * (pipe/pipeline), never holding a whole body. Framing is re-derived on each side: Transfer-Encoding is
 * hop-by-hop, so a chunked request is re-chunked by Node towards the origin and a chunked response towards the
 * client (or close-delimited for an HTTP/1.0 client).
 *
 *   client ──req──▶ getaway ──upstreamReq──▶ origin
 *   client ◀──res── getaway ◀──upstreamRes── origin
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { ProxyError, toProxyError } from '../core/errors.js';
import type { HttpFlow } from '../core/flow.js';
import { HeaderList } from '../core/header-list.js';
import type { ProxyRuntime } from '../core/runtime.js';
import { appendVia, stripHopByHopHeaders } from './hop-by-hop.js';
import { checkResponseFraming } from './response-framing.js';
import { PROXY_NAME } from './error-response.js';
import { createGuardedLookup } from '../upstream/dialer.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function requestHasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

/** Opens the request towards the origin with the flow's outbound head. Does not send a body yet. */
function openUpstreamRequest(runtime: ProxyRuntime, flow: HttpFlow, chunked: boolean): ClientRequest {
  const { request } = flow;
  const raw = request.headers.toRaw();
  if (chunked && !request.headers.has('content-length')) raw.push('Transfer-Encoding', 'chunked');
  const https = request.scheme === 'https';
  const options = {
    host: request.host,
    port: request.port,
    method: request.method,
    path: request.path,
    headers: raw,
    agent: https ? runtime.httpsAgent : runtime.httpAgent,
    // Per request, because whether an address is this proxy depends on the port too.
    lookup: createGuardedLookup(runtime.guard, request.port),
    timeout: runtime.options.responseTimeoutMs,
    ...(https && isIP(request.host) === 0 ? { servername: request.host } : {}),
  };
  return https ? httpsRequest(options) : httpRequest(options);
}

/** Rejects when the origin cannot be reached in time; reused keep-alive sockets are already connected. */
export function watchConnect(runtime: ProxyRuntime, flow: HttpFlow, upstreamReq: ClientRequest): void {
  upstreamReq.once('socket', (socket: Socket) => {
    if (!socket.connecting) {
      flow.timestamps.upstreamConnected = Date.now();
      return;
    }
    const { connectTimeoutMs } = runtime.options;
    const timer = setTimeout(() => {
      upstreamReq.destroy(
        new ProxyError('connection_timeout', `no connection to ${flow.request.host}:${flow.request.port} within ${connectTimeoutMs} ms`),
      );
    }, connectTimeoutMs);
    const connected = (): void => {
      clearTimeout(timer);
      flow.timestamps.upstreamConnected = Date.now();
    };
    socket.once('connect', connected);
    socket.once('secureConnect', connected);
    socket.once('close', () => clearTimeout(timer));
  });
}

/**
 * Forwards the request and streams the response. Resolves once the client has the whole response; rejects with
 * a ProxyError otherwise. If it rejects before the response head was written, the caller still owns `res`.
 */
export function forwardRequest(runtime: ProxyRuntime, flow: HttpFlow, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { request } = flow;
  if (isIP(request.host) !== 0) {
    const refused = runtime.guard(request.host, request.port);
    if (refused) return Promise.reject(refused);
  }
  const hasBody = requestHasBody(req);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const canRetry = !hasBody && IDEMPOTENT.has(request.method);
  flow.upstream = 'direct';

  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const succeed = (): void => {
      if (settled) return;
      settled = true;
      resolve();
    };
    const fail = (error: ProxyError): void => {
      if (settled) return;
      settled = true;
      reject(error);
    };

    let current: ClientRequest | undefined;
    const clientGone = (): void => {
      if (res.writableFinished) return;
      current?.destroy();
      fail(new ProxyError('client_aborted', 'client closed the connection before the response was complete'));
    };
    res.once('close', clientGone);

    let attempt = 0;
    const send = (): void => {
      attempt++;
      const upstreamReq = openUpstreamRequest(runtime, flow, chunked);
      current = upstreamReq;
      flow.setKillHandler(() => {
        upstreamReq.destroy();
        res.destroy();
      });
      watchConnect(runtime, flow, upstreamReq);
      let responded = false;
      // Destroying the request surfaces downstream as a generic reset; remember why we did it.
      let timedOut: ProxyError | undefined;

      upstreamReq.on('information', (info) => {
        if (info.statusCode === 100 && !res.headersSent) res.writeContinue();
      });
      upstreamReq.on('timeout', () => {
        timedOut = responded
          ? new ProxyError('connection_read_timeout', `origin sent nothing for ${runtime.options.responseTimeoutMs} ms`)
          : new ProxyError('http_response_timeout', `no response head within ${runtime.options.responseTimeoutMs} ms`);
        upstreamReq.destroy(timedOut);
      });
      upstreamReq.on('error', (err) => {
        if (responded) return; // the response pipeline reports it
        // A pooled connection the origin closed while idle fails on first use; a request that sent nothing
        // irreplaceable may go again on a fresh connection (what browsers and undici do).
        if (canRetry && upstreamReq.reusedSocket && attempt === 1 && !res.destroyed) {
          send();
          return;
        }
        fail(toProxyError(err, 'connection_terminated'));
      });
      upstreamReq.on('response', (upstreamRes) => {
        responded = true;
        relayResponse(runtime, flow, req, res, upstreamRes).then(succeed, (err: unknown) => {
          upstreamReq.destroy();
          fail(timedOut ?? toProxyError(err, 'http_response_incomplete'));
        });
      });

      if (hasBody && attempt === 1) {
        req.on('data', (chunk: Buffer) => {
          flow.bytes.requestBody += chunk.length;
        });
        req.pipe(upstreamReq);
      } else {
        upstreamReq.end();
      }
    };
    send();
  });
}

async function relayResponse(
  runtime: ProxyRuntime,
  flow: HttpFlow,
  req: IncomingMessage,
  res: ServerResponse,
  upstreamRes: IncomingMessage,
): Promise<void> {
  flow.timestamps.responseHeaders = Date.now();
  const headers = new HeaderList(upstreamRes.rawHeaders);
  const ambiguous = checkResponseFraming(headers);
  if (ambiguous !== undefined) throw ambiguous;
  const declaredTrailers = headers.get('trailer');
  stripHopByHopHeaders(headers);
  appendVia(headers, upstreamRes.httpVersion, PROXY_NAME);
  const status = upstreamRes.statusCode ?? 502;
  flow.response = { status, reason: upstreamRes.statusMessage, headers };

  const pending = runtime.hooks.run('responseHeaders', flow);
  if (pending !== undefined) await pending;
  if (flow.killed) throw flow.error;

  const response = flow.response;
  const outbound = response.headers.toRaw();
  // Trailer is hop-by-hop, but the trailers themselves are relayed, so announce them again (as Go's ReverseProxy does).
  if (declaredTrailers !== undefined && req.httpVersion === '1.1') outbound.push('Trailer', declaredTrailers);
  if (runtime.isClosing()) outbound.push('Connection', 'close');
  res.writeHead(response.status, response.reason, outbound);

  upstreamRes.on('data', (chunk: Buffer) => {
    flow.bytes.responseBody += chunk.length;
  });
  // Registered before pipeline() so the trailers are added before pipe() calls res.end().
  upstreamRes.once('end', () => {
    if (upstreamRes.rawTrailers.length > 0) res.addTrailers(pairs(upstreamRes.rawTrailers));
  });
  await new Promise<void>((resolve, reject) => {
    // On any failure pipeline destroys both ends, so the client sees a broken response, never a short one that
    // looks complete.
    pipeline(upstreamRes, res, (err) => (err ? reject(err) : resolve()));
  });
}

function pairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}
