/**
 * The only place that writes responses the proxy makes itself: errors (with RFC 9209 Proxy-Status) and answers
 * set by hooks. Two shapes: on a ServerResponse (the normal path) or as raw bytes on a socket (CONNECT and
 * Upgrade, where Node hands us the socket instead of a response object).
 */
import { STATUS_CODES, validateHeaderName, validateHeaderValue, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../core/errors.js';
import type { Flow, FlowResponse } from '../core/flow.js';
import { HeaderList } from '../core/header-list.js';

export const PROXY_NAME = 'getaway';

/** An sf-string (RFC 8941 §3.3.3) holds printable ASCII only, with `\` and `"` escaped. */
function toStructuredString(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, '?');
  return `"${printable.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function proxyStatusValue(error: ProxyError): string {
  return `${PROXY_NAME}; error=${error.type}; details=${toStructuredString(error.message)}`;
}

export function errorResponse(error: ProxyError, close: boolean): FlowResponse {
  const headers = new HeaderList([
    'Proxy-Status', proxyStatusValue(error),
    'Content-Type', 'text/plain; charset=utf-8',
    'Cache-Control', 'no-store',
  ]);
  if (close) headers.append('Connection', 'close');
  const extra = error.responseHeaders;
  if (extra !== undefined) for (let i = 0; i + 1 < extra.length; i += 2) headers.append(extra[i]!, extra[i + 1]!);
  // A limit is temporary: tell well-behaved clients when to come back instead of hammering.
  if (error.retryAfterMs !== undefined) headers.append('Retry-After', String(Math.ceil(error.retryAfterMs / 1000)));
  else if (error.type === 'connection_limit_reached') headers.append('Retry-After', '1');
  return { status: error.status, headers, body: `${error.status} ${reasonFor(error.status)}: ${error.message}\n` };
}

function reasonFor(status: number, reason?: string): string {
  return reason ?? STATUS_CODES[status] ?? 'Unknown';
}

export function isStreamBody(body: FlowResponse['body']): body is AsyncIterable<Uint8Array> {
  return typeof body === 'object' && body !== null && !(body instanceof Uint8Array) && Symbol.asyncIterator in body;
}

/** A proxy-made body as bytes; a stream body has none to give (it is relayed, see writeStreamHead). */
export function bodyBytes(body: FlowResponse['body']): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body);
  if (isStreamBody(body)) throw new ProxyError('proxy_internal_error', 'a stream body can answer a plain request only, not a CONNECT or an upgrade');
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Writes the head of a proxy-made response with a stream body. Framing is the core's: a Content-Length the hook
 * set is kept when it is a valid length (returned, so the relay can check the stream delivers exactly that; Node
 * itself refuses only more), else the body is chunked. Transfer-Encoding from a hook is never sent as is.
 */
export function writeStreamHead(res: ServerResponse, response: FlowResponse): number | undefined {
  const headers = response.headers.clone();
  headers.delete('transfer-encoding');
  const lengths = headers.getAll('content-length');
  const valid = lengths.length === 1 && /^\d{1,15}$/.test(lengths[0]!.trim());
  if (!valid) headers.delete('content-length');
  res.writeHead(response.status, reasonFor(response.status, response.reason), headers.toRaw());
  return valid ? Number(lengths[0]) : undefined;
}

/** Writes a proxy-made response through Node's ServerResponse, with a correct Content-Length. */
export function writeResponse(res: ServerResponse, response: FlowResponse, isHeadRequest: boolean): void {
  const body = bodyBytes(response.body);
  const headers = response.headers.clone();
  headers.delete('content-length');
  headers.delete('transfer-encoding');
  headers.append('Content-Length', String(body.length));
  res.writeHead(response.status, reasonFor(response.status, response.reason), headers.toRaw());
  res.end(isHeadRequest ? undefined : body);
}

/**
 * Writes a complete response as raw bytes and half-closes the socket. Used where there is no ServerResponse
 * (CONNECT, Upgrade, client errors). Always `Connection: close`: after a refused CONNECT the bytes that follow
 * are the client's tunnel payload, not a next request.
 */
export function writeRawResponse(socket: Duplex, response: FlowResponse): void {
  if (socket.destroyed || !socket.writable) return;
  const body = bodyBytes(response.body);
  const headers = response.headers.clone();
  for (const name of ['content-length', 'transfer-encoding', 'connection']) headers.delete(name);
  headers.append('Content-Length', String(body.length));
  headers.append('Connection', 'close');
  socket.end(Buffer.concat([serializeHead(response.status, response.reason, headers), body]));
}

/**
 * Tells a client on a raw socket (CONNECT, upgrade) that its flow failed: the error response while no head has
 * gone out and the flow was not killed; otherwise only closing the connection can say it.
 */
export function answerFailureOnSocket(socket: Socket, flow: Flow, error: ProxyError, headWritten: boolean): void {
  if (flow.killed || headWritten) {
    socket.destroy();
    return;
  }
  flow.response = errorResponse(error, true);
  writeRawResponse(socket, flow.response);
  closeSoon(socket);
}

/** What node:http accepts in a reason phrase or field value: no CR, LF, NUL or other control character but HTAB. */
const INVALID_FIELD_TEXT = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * A response head as bytes, for the paths that write to a raw socket (CONNECT, Upgrade). Status, reason and
 * fields are checked as node:http checks them on a ServerResponse, because hooks supply them: a CR/LF in a value
 * would let a hook's input split the response. Throws a ProxyError before anything is written, so the caller
 * fails the flow closed (500) instead of sending a head it did not mean.
 */
export function serializeHead(status: number, reason: string | undefined, headers: HeaderList): Buffer {
  const phrase = reasonFor(status, reason);
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new ProxyError('proxy_internal_error', `invalid response status ${String(status)}`);
  if (INVALID_FIELD_TEXT.test(phrase)) throw new ProxyError('proxy_internal_error', `invalid character in the reason phrase for ${status}`);
  let head = `HTTP/1.1 ${status} ${phrase}\r\n`;
  for (const [name, value] of headers) {
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (err) {
      throw new ProxyError('proxy_internal_error', `invalid response header field "${name.replace(/[^\x21-\x7e]/g, '?')}"`, { cause: err });
    }
    head += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/**
 * Destroys a socket after giving a written response a moment to leave. Node cannot send RST (nodejs/node#27428),
 * and a peer that never reads would otherwise hold the socket: end() sends FIN, destroy() bounds the wait.
 */
export function closeSoon(socket: Socket | Duplex, lingerMs = 1000): void {
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
