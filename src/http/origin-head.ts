/**
 * The one path an origin's response head takes before the client sees it, for plain responses, declined upgrades
 * and 101s alike: recorded as received, framing checked, hop-by-hop fields removed, Via added, set as
 * `flow.response`, then the `responseHeaders` hook. Writing the head is the caller's (a ServerResponse or a raw
 * socket).
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ProxyError } from '../core/errors.js';
import { ReceivedResponse, type HttpFlow, type UpstreamConnectionInfo } from '../core/flow.js';
import { HeaderList } from '../core/header-list.js';
import type { ProxyRuntime } from '../runtime.js';
import { appendVia, stripHopByHopHeaders } from './hop-by-hop.js';
import { checkResponseFraming } from './response-framing.js';

/** Hop-by-hop facts of the head as received, read before they are stripped: what relaying the rest depends on. */
export interface OriginHeadFacts {
  /** The Trailer field, announced again when the trailers are relayed. */
  trailer: string | undefined;
  chunked: boolean;
  /** The Upgrade field of a 101. */
  upgrade: string | undefined;
}

/** A response head as received: node:http's IncomingMessage, or what the direct exchange parsed (response-head-parser.ts). */
export interface OriginResponse {
  readonly statusCode?: number | undefined;
  readonly statusMessage?: string | undefined;
  readonly httpVersion: string;
  readonly rawHeaders: string[];
}

/**
 * Takes the head into the flow: `flow.receivedResponse`, `flow.upstreamConnection` and the outbound
 * `flow.response`; `socket` is the connection it came on (a TLSSocket for https://). Returns the facts read before
 * stripping, or the framing error (nothing is set as the response then).
 */
export function takeOriginHead(runtime: Pick<ProxyRuntime, 'pseudonym'>, flow: HttpFlow, upstreamRes: OriginResponse, socket: Socket): OriginHeadFacts | ProxyError {
  flow.timestamps.responseHeaders = Date.now();
  const status = upstreamRes.statusCode ?? 502;
  flow.receivedResponse = new ReceivedResponse(status, upstreamRes.statusMessage ?? '', upstreamRes.httpVersion, upstreamRes.rawHeaders);
  flow.upstreamConnection = describeConnection(socket);
  const headers = new HeaderList(upstreamRes.rawHeaders);
  const ambiguous = checkResponseFraming(headers);
  if (ambiguous !== undefined) return ambiguous;
  const facts: OriginHeadFacts = {
    trailer: headers.get('trailer'),
    chunked: headers.has('transfer-encoding'),
    upgrade: status === 101 ? headers.get('upgrade') : undefined,
  };
  stripHopByHopHeaders(headers);
  appendVia(headers, upstreamRes.httpVersion, runtime.pseudonym);
  flow.response = { status, reason: upstreamRes.statusMessage, headers };
  return facts;
}

/**
 * Runs `responseHeaders` on the head takeOriginHead set. Undefined when every hook finished synchronously (the body
 * can start in this same tick); throws, or rejects, when a hook failed or killed the flow. A hook that throws
 * synchronously inside an http client's event listener therefore reaches the caller, never the event loop.
 */
export function runResponseHeaders(runtime: Pick<ProxyRuntime, 'hooks'>, flow: HttpFlow): Promise<void> | undefined {
  const pending = runtime.hooks.run('responseHeaders', flow);
  if (pending === undefined) {
    if (flow.killed) throw flow.error;
    return undefined;
  }
  return pending.then(() => {
    if (flow.killed) throw flow.error;
  });
}

/**
 * The connection's facts as the archive needs them: the address actually connected to, and TLS details. The
 * socket is Node's (a TLSSocket for https://), read once per response head.
 */
function describeConnection(socket: Socket): UpstreamConnectionInfo {
  const info: UpstreamConnectionInfo = { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
  if (socket instanceof TLSSocket) {
    const cipher = socket.getCipher();
    info.tls = { protocol: socket.getProtocol(), cipher: cipher?.name, cipherSuite: cipher?.standardName, alpnProtocol: socket.alpnProtocol };
  }
  return info;
}
