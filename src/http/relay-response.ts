/**
 * Streams an origin's response to the client: framing checked, hop-by-hop fields removed, Via added, the
 * `responseHeaders` hook run, then the body piped with back-pressure and trailers relayed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { HttpFlow } from '../core/flow.js';
import { HeaderList } from '../core/header-list.js';
import type { ProxyRuntime } from '../core/runtime.js';
import { PROXY_NAME } from './error-response.js';
import { appendVia, stripHopByHopHeaders } from './hop-by-hop.js';
import { checkResponseFraming } from './response-framing.js';

export async function relayResponse(
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
