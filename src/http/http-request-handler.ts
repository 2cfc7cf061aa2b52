import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { ProxyError } from '../core/errors.js';
import { notifyTaps } from '../core/body-tap.js';
import type { ClientInfo } from '../core/connection.js';
import type { HttpFlow } from '../core/flow.js';
import type { Interception } from '../core/runtime.js';
import { redirectedRequestHost } from '../transparent/request-host.js';
import { endFlow, markFailed } from '../core/flow-end.js';
import type { ProxyRuntime } from '../runtime.js';
import { createHttpFlow } from './create-http-flow.js';
import { bodyBytes, errorResponse, isStreamBody, writeResponse, writeStreamHead } from './error-response.js';
import { EMPTY_BODY, relayTapped } from './tapped-relay.js';
import { forwardRequest } from './forward.js';

/** Node's 'request' (and 'checkContinue') listener: proxy requests in absolute form, and redirected ones. */
export function createHttpRequestHandler(runtime: ProxyRuntime) {
  function startHttpFlow(req: IncomingMessage, res: ServerResponse, client: ClientInfo, interception: Interception | undefined, redirectedHost?: string): void {
    const flow = createHttpFlow(runtime.options, runtime.pseudonym, client, req, false, interception, redirectedHost);
    if (flow instanceof ProxyError) {
      runtime.requestRejected(req.socket, flow);
      if (!req.complete) runtime.answeredBeforeBodyEnd.add(req.socket);
      writeResponse(res, errorResponse(flow, true), req.method === 'HEAD');
      return;
    }
    runtime.flowStarted(flow);
    void runHttpFlow(runtime, flow, req, res);
  }
  return function handleHttpRequest(req: IncomingMessage, res: ServerResponse): void {
    const client = runtime.clientInfo(req.socket);
    const interception = runtime.interceptionOf(req.socket);
    if (client.destination === undefined || interception !== undefined) {
      startHttpFlow(req, res, client, interception);
      return;
    }
    // Redirected to a transparent listener: the name the request carries is checked against where it was going.
    void redirectedRequestHost(runtime, req, client.destination).then((host) => startHttpFlow(req, res, client, interception, host));
  };
}

async function runHttpFlow(runtime: ProxyRuntime, flow: HttpFlow, req: IncomingMessage, res: ServerResponse): Promise<void> {
  flow.setKillHandler(() => res.destroy());
  try {
    const pending = runtime.hooks.run('requestHeaders', flow);
    if (pending !== undefined) await pending;
    if (flow.killed) throw flow.error;
    if (flow.response !== undefined) {
      // Answered by a hook: the origin is never asked.
      flow.timestamps.responseHeaders = Date.now();
      if (runtime.isClosing()) flow.response.headers.set('Connection', 'close');
      const { body } = flow.response;
      if (isStreamBody(body)) await sendStreamBody(flow, req, res, body);
      else {
        await sendAndWait(res, () => writeResponse(res, flow.response!, req.method === 'HEAD'));
        await tellTapsOfBufferedBody(flow, req.method === 'HEAD');
      }
    } else {
      await forwardRequest(runtime, flow, req, res);
    }
  } catch (err) {
    failHttpFlow(runtime, flow, req, res, err);
    await endFlow(runtime, flow, 'error');
    return;
  }
  await endFlow(runtime, flow, 'complete');
}

/**
 * Before the head is written the client gets an error response; after it, only a destroyed connection can
 * say "this response is broken" (RFC 9112 §8: an incomplete message must not look complete).
 */
function failHttpFlow(runtime: ProxyRuntime, flow: HttpFlow, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const error = markFailed(runtime, flow, err);
  if (flow.killed || res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  // An unread request body would be taken for the next request: close unless the body was fully consumed.
  const close = !req.complete || runtime.isClosing();
  if (!req.complete) runtime.answeredBeforeBodyEnd.add(req.socket);
  flow.response = errorResponse(error, close);
  writeResponse(res, flow.response, req.method === 'HEAD');
}

/** A hook's stream body, relayed like an origin's: back-pressure, taps, and a broken stream breaks the connection. */
async function sendStreamBody(flow: HttpFlow, req: IncomingMessage, res: ServerResponse, body: AsyncIterable<Uint8Array>): Promise<void> {
  const length = writeStreamHead(res, flow.response!);
  const isHead = req.method === 'HEAD';
  if (isHead && 'destroy' in body && typeof body.destroy === 'function') (body as Readable).destroy();
  const options = isHead || length === undefined ? { mode: 'response' as const } : { mode: 'response' as const, expectedLength: length };
  await relayTapped(isHead ? EMPTY_BODY : body, res, flow.responseTaps ?? [], (n) => (flow.bytes.responseBody += n), options);
}

/** Taps see a hook's buffered body as one chunk (nothing for HEAD), after it was sent. */
async function tellTapsOfBufferedBody(flow: HttpFlow, isHeadRequest: boolean): Promise<void> {
  const taps = flow.responseTaps;
  const body = flow.response!.body;
  if (taps === undefined) return;
  const chunk = isHeadRequest ? undefined : bodyBytes(body);
  if (chunk !== undefined && chunk.length > 0) await notifyTaps(taps, 'data', chunk);
  await notifyTaps(taps, 'end');
}

function sendAndWait(res: ServerResponse, write: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    res.once('finish', resolve);
    res.once('close', () => {
      if (!res.writableFinished) reject(new ProxyError('client_aborted', 'client closed the connection before the response was complete'));
    });
    write();
  });
}
