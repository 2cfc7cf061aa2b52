/**
 * Checks on a parsed request head that llhttp does not make, or makes only after the head was dispatched: size
 * limits with their own statuses, Host (RFC 9112 §3.2: required in HTTP/1.1, never twice), and a transfer coding
 * other than one final chunked (RFC 9112 §6.3: 400, since the body length cannot be determined). Running before
 * anything is dialled means a refused request never opens a connection to the origin. Pure.
 */
import { ProxyError } from '../core/errors.js';

export interface RequestLimits {
  maxRequestTargetBytes: number;
  maxHeaderBytes: number;
  maxHeaderCount: number;
}

export interface RequestHead {
  target: string;
  httpVersion: string;
  rawHeaders: readonly string[];
}

export function checkRequestHead(head: RequestHead, limits: RequestLimits): ProxyError | undefined {
  const { target, rawHeaders } = head;
  if (target.length > limits.maxRequestTargetBytes) {
    return new ProxyError('http_request_error', `request target longer than ${limits.maxRequestTargetBytes} bytes`, { status: 414 });
  }
  const count = rawHeaders.length / 2;
  if (count > limits.maxHeaderCount) {
    return new ProxyError('http_request_error', `more than ${limits.maxHeaderCount} header fields`, { status: 431 });
  }
  let bytes = 0;
  let hosts = 0;
  let codings: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    bytes += name.length + value.length + 4; // "name: value\r\n"
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      codings ??= [];
      for (const part of value.split(',')) if (part.trim() !== '') codings.push(part.trim().toLowerCase());
    }
  }
  if (bytes > limits.maxHeaderBytes) {
    return new ProxyError('http_request_error', `header section larger than ${limits.maxHeaderBytes} bytes`, { status: 431 });
  }
  if (hosts > 1) return new ProxyError('http_request_error', 'more than one Host header field');
  if (hosts === 0 && head.httpVersion === '1.1') return new ProxyError('http_request_error', 'HTTP/1.1 request without Host');
  if (codings !== undefined && (codings.length !== 1 || codings[0] !== 'chunked')) {
    return new ProxyError('http_request_error', `Transfer-Encoding "${codings.join(', ')}" is not a single chunked`);
  }
  return undefined;
}
