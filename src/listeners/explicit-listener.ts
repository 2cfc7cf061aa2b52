/**
 * The explicit-proxy listener: a node:http server (llhttp in strict mode) whose events are routed to the
 * HTTP, CONNECT and Upgrade handlers. It only wires; every decision lives in the handlers.
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { ProxyError } from '../core/errors.js';
import type { ProxyRuntime } from '../runtime.js';
import { errorResponse, writeRawResponse } from '../http/error-response.js';
import { createHttpRequestHandler } from '../http/http-request-handler.js';
import { createUpgradeHandler } from '../http/upgrade.js';
import { createConnectHandler } from '../tunnel/connect.js';

/** Node's parser error codes that mean "too big" rather than "malformed". */
const CLIENT_ERROR_STATUS: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  ERR_HTTP_HEADERS_TIMEOUT: 408,
};

export function createExplicitListener(runtime: ProxyRuntime): Server {
  const { options } = runtime;
  const server = createServer({
    insecureHTTPParser: false,
    // Host is checked in request-limits.ts so the 400 carries Proxy-Status like every other refusal.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    // llhttp's own ceiling sits above ours so that request-limits.ts can answer 414 or 431 precisely; past this
    // one llhttp stops reading and the client gets 431.
    maxHeaderSize: options.maxRequestTargetBytes + options.maxHeaderBytes + 1024,
    headersTimeout: options.requestHeadersTimeoutMs,
    // requestTimeout bounds the whole request including the body; a large upload may take long, so only the
    // head is bounded here and the body by the idle timeout.
    requestTimeout: 0,
    keepAliveTimeout: options.idleTimeoutMs,
    // Node checks headersTimeout on this interval; keep it well under the timeout so slowloris is cut on time.
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(options.requestHeadersTimeoutMs / 4))),
  });
  // No inactivity timeout on client sockets mid-request: a client waiting for a slow (long-poll) response is
  // silent legitimately. Origin silence is bounded by responseTimeoutMs on the upstream side instead.
  server.timeout = 0;
  // A client may half-close once its request is sent (RFC 9112 §9.6; nc, scripts, some HTTP/1.0 clients). By default
  // node:http takes that FIN as an abort and destroys the requests still in flight, so the response never came.
  // With node's own (undocumented, untyped) httpAllowHalfOpen flag the last response is sent, then the connection
  // closes. test/http/half-close.test.ts fails if a Node release drops the flag.
  Object.assign(server, { httpAllowHalfOpen: true });
  // Node drops fields past this count silently; one more than the limit lets request-limits.ts see the excess and refuse.
  server.maxHeadersCount = options.maxHeaderCount + 1;

  const handleHttpRequest = createHttpRequestHandler(runtime);
  server.on('request', handleHttpRequest);
  // With a listener here Node does not answer 100 Continue itself; the origin's 100 is relayed instead.
  server.on('checkContinue', handleHttpRequest);
  server.on('connect', createConnectHandler(runtime));
  server.on('upgrade', createUpgradeHandler(runtime));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? 'unknown';
    const client = runtime.clientInfo(socket);
    const clientAddress = `${client.remoteAddress}:${client.remotePort}`;
    if (runtime.answeredBeforeBodyEnd.has(socket)) {
      socket.destroySoon();
      return;
    }
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      // The client went away between requests: routine, so only debug.
      runtime.logger.debug({ err, code, client: clientAddress }, 'client connection reset');
      socket.destroy();
      return;
    }
    const status = CLIENT_ERROR_STATUS[code] ?? 400;
    const detail =
      status === 408 ? 'request head not received in time' : `malformed request (${code}${'reason' in err ? `: ${String(err.reason)}` : ''})`;
    const error = new ProxyError('http_request_error', detail, { status });
    runtime.requestRejected(socket, error);
    writeRawResponse(socket, errorResponse(error, true));
    socket.destroySoon();
  });
  return server;
}
