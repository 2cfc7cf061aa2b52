/**
 * Streams an origin's response to the client: framing checked, hop-by-hop fields removed, Via added, the
 * `responseHeaders` hook run, then the body piped with back-pressure and trailers relayed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpFlow } from '../core/flow.js';
import { HeaderList } from '../core/header-list.js';
import type { ProxyRuntime } from '../runtime.js';
import { ProxyError } from '../core/errors.js';
import { runResponseHeaders, takeOriginHead, type OriginHeadFacts } from './origin-head.js';
import { relayTapped } from './tapped-relay.js';

export function relayResponse(
  runtime: ProxyRuntime,
  flow: HttpFlow,
  req: IncomingMessage,
  res: ServerResponse,
  upstreamRes: IncomingMessage,
): Promise<void> {
  const facts = takeOriginHead(runtime, flow, upstreamRes, upstreamRes.socket);
  if (facts instanceof ProxyError) return Promise.reject(facts);
  let pending: Promise<void> | undefined;
  try {
    pending = runResponseHeaders(runtime, flow);
  } catch (err) {
    return Promise.reject(err);
  }
  // Without an asynchronous hook the body starts flowing in this same tick.
  if (pending === undefined) return sendResponse(runtime, flow, req, res, upstreamRes, facts);
  return pending.then(() => sendResponse(runtime, flow, req, res, upstreamRes, facts));
}

/** Writes `flow.response` (the origin's head after hooks) as the client's response head. */
export function writeOriginHead(runtime: ProxyRuntime, flow: HttpFlow, req: IncomingMessage, res: ServerResponse, facts: OriginHeadFacts): void {
  const response = flow.response!;
  const outbound = response.headers.toRaw();
  // Trailer is hop-by-hop, but the trailers themselves are relayed, so announce them again (as Go's ReverseProxy does).
  if (facts.trailer !== undefined && req.httpVersion === '1.1') outbound.push('Trailer', facts.trailer);
  if (runtime.isClosing()) outbound.push('Connection', 'close');
  res.writeHead(response.status, response.reason, outbound);
}

function sendResponse(
  runtime: ProxyRuntime,
  flow: HttpFlow,
  req: IncomingMessage,
  res: ServerResponse,
  upstreamRes: IncomingMessage,
  facts: OriginHeadFacts,
): Promise<void> {
  writeOriginHead(runtime, flow, req, res, facts);

  // Trailers only come with a chunked body. Registered before the relay starts, so they are added before it ends res.
  if (facts.chunked) {
    upstreamRes.once('end', () => {
      if (upstreamRes.rawTrailers.length > 0) res.addTrailers(new HeaderList(upstreamRes.rawTrailers).toJSON());
    });
  }
  const taps = flow.responseTaps;
  if (taps !== undefined) return relayTapped(upstreamRes, res, taps, (length) => (flow.bytes.responseBody += length), { mode: 'response' });
  upstreamRes.on('data', (chunk: Buffer) => {
    flow.bytes.responseBody += chunk.length;
  });
  return relayBody(upstreamRes, res);
}

/**
 * pipe() with pipeline()'s failure rule: if either side fails or closes early, both are destroyed, so the client
 * sees a broken response, never a short one that looks complete. Written out because stream.pipeline allocates
 * an AbortController per call and aborts it on success, whose DOMException (with a stack) cost about a tenth of
 * the CPU of a small proxied request in a profile.
 */
function relayBody(source: IncomingMessage, destination: ServerResponse): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      source.destroy();
      destination.destroy();
      reject(err);
    };
    // Both streams live for this one response only, so plain on() (no once() wrapper per event) leaks nothing.
    source.on('error', fail);
    // An origin that closes mid-body ends the response with 'close' before 'end' ('aborted' is deprecated).
    source.on('close', () => {
      if (!source.complete) fail(Object.assign(new Error('origin closed the connection mid-response'), { code: 'ECONNRESET' }));
    });
    destination.on('error', fail);
    destination.on('close', () => {
      if (!destination.writableFinished) fail(Object.assign(new Error('client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
    destination.on('finish', () => {
      done = true;
      resolve();
    });
    source.pipe(destination);
  });
}
