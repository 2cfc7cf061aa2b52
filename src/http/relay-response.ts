/**
 * Streams an origin's response to the client: framing checked, hop-by-hop fields removed, Via added, the
 * `responseHeaders` hook run, then the body piped with back-pressure and trailers relayed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { ReceivedResponse, type HttpFlow, type UpstreamConnectionInfo } from '../core/flow.js';
import { HeaderList } from '../core/header-list.js';
import type { ProxyRuntime } from '../core/runtime.js';
import { appendVia, stripHopByHopHeaders } from './hop-by-hop.js';
import { checkResponseFraming } from './response-framing.js';
import { relayTapped } from './tapped-relay.js';

export function relayResponse(
  runtime: ProxyRuntime,
  flow: HttpFlow,
  req: IncomingMessage,
  res: ServerResponse,
  upstreamRes: IncomingMessage,
): Promise<void> {
  flow.timestamps.responseHeaders = Date.now();
  flow.receivedResponse = new ReceivedResponse(upstreamRes.statusCode ?? 0, upstreamRes.statusMessage ?? '', upstreamRes.httpVersion, upstreamRes.rawHeaders);
  flow.upstreamConnection = describeConnection(upstreamRes.socket);
  const headers = new HeaderList(upstreamRes.rawHeaders);
  const ambiguous = checkResponseFraming(headers);
  if (ambiguous !== undefined) return Promise.reject(ambiguous);
  const declaredTrailers = headers.get('trailer');
  const chunked = headers.has('transfer-encoding');
  stripHopByHopHeaders(headers);
  appendVia(headers, upstreamRes.httpVersion, runtime.pseudonym);
  const status = upstreamRes.statusCode ?? 502;
  flow.response = { status, reason: upstreamRes.statusMessage, headers };

  let pending: Promise<void> | undefined;
  try {
    pending = runtime.hooks.run('responseHeaders', flow);
  } catch (err) {
    return Promise.reject(err);
  }
  // Without an asynchronous hook the body starts flowing in this same tick.
  if (pending === undefined) return sendResponse(runtime, flow, req, res, upstreamRes, declaredTrailers, chunked);
  return pending.then(() => sendResponse(runtime, flow, req, res, upstreamRes, declaredTrailers, chunked));
}

/**
 * The connection's facts as the archive needs them: the address actually connected to, and TLS details. The
 * socket is Node's (a TLSSocket for https://), read once per response head.
 */
function describeConnection(socket: Socket): UpstreamConnectionInfo {
  const info: UpstreamConnectionInfo = { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
  if (socket instanceof TLSSocket) info.tls = { protocol: socket.getProtocol(), cipher: socket.getCipher()?.name, alpnProtocol: socket.alpnProtocol };
  return info;
}

function sendResponse(
  runtime: ProxyRuntime,
  flow: HttpFlow,
  req: IncomingMessage,
  res: ServerResponse,
  upstreamRes: IncomingMessage,
  declaredTrailers: string | undefined,
  chunked: boolean,
): Promise<void> {
  if (flow.killed) return Promise.reject(flow.error);
  const response = flow.response!;
  const outbound = response.headers.toRaw();
  // Trailer is hop-by-hop, but the trailers themselves are relayed, so announce them again (as Go's ReverseProxy does).
  if (declaredTrailers !== undefined && req.httpVersion === '1.1') outbound.push('Trailer', declaredTrailers);
  if (runtime.isClosing()) outbound.push('Connection', 'close');
  res.writeHead(response.status, response.reason, outbound);

  // Trailers only come with a chunked body. Registered before the relay starts, so they are added before it ends res.
  if (chunked) {
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
