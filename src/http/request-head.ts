/**
 * The request head the direct exchange writes (origin-exchange.ts): the flow's method, origin-form target and header
 * fields in their order, case and repeats, checked as node:http's client checks them (validateHeaderName and
 * validateHeaderValue, as error-response.ts's serializeHead does for raw response heads), so a value a hook set with
 * CR or LF can never split the request.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { ProxyError } from '../core/errors.js';
/** node:http's client refuses a path with spaces, controls or characters above U+00FF. */
const INVALID_PATH_CHAR = /[^\u0021-\u00ff]/;
/**
 * Methods node:http's client gives `Content-Length: 0` when they carry no body, so an origin that expects a body
 * for them does not wait for one; kept, so the direct exchange sends what the client path did.
 */
const BODYLESS_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

function invalid(detail: string): ProxyError {
  return new ProxyError('proxy_internal_error', `the request to the origin is invalid: ${detail}`);
}

export interface RequestHeadFraming {
  /** The body is sent chunked (its length is unknown). */
  chunked: boolean;
  hasBody: boolean;
}

/**
 * `raw` is name, value alternating, as HeaderList.toRaw() gives it. Returns the head as a latin1 string (header
 * values are bytes; llhttp read them as latin1). Throws a ProxyError for a method, path or field node:http's client
 * would refuse.
 */
export function formatRequestHead(method: string, path: string, raw: readonly string[], framing: RequestHeadFraming): string {
  try {
    // A method is a token, as a field name is.
    validateHeaderName(method);
  } catch {
    throw invalid(`method ${JSON.stringify(method)}`);
  }
  if (INVALID_PATH_CHAR.test(path)) throw invalid('the path has characters that must be escaped');
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      throw invalid(`header field ${JSON.stringify(name)}`);
    }
    if (!hasLength && name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
    head += `${name}: ${value}\r\n`;
  }
  if (framing.chunked) head += 'Transfer-Encoding: chunked\r\n';
  else if (!framing.hasBody && !hasLength && !BODYLESS_BY_DEFAULT.has(method)) head += 'Content-Length: 0\r\n';
  return `${head}\r\n`;
}
