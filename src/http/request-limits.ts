/**
 * Checks on a parsed request head that llhttp does not make: size limits with their own statuses, and a second
 * Host (RFC 9112 §3.2: a request with more than one Host field line gets 400). Pure.
 */
import { ProxyError } from '../core/errors.js';

export interface RequestLimits {
  maxRequestTargetBytes: number;
  maxHeaderBytes: number;
  maxHeaderCount: number;
}

export function checkRequestHead(target: string, rawHeaders: readonly string[], limits: RequestLimits): ProxyError | undefined {
  if (target.length > limits.maxRequestTargetBytes) {
    return new ProxyError('http_request_error', `request target longer than ${limits.maxRequestTargetBytes} bytes`, { status: 414 });
  }
  const count = rawHeaders.length / 2;
  if (count > limits.maxHeaderCount) {
    return new ProxyError('http_request_error', `more than ${limits.maxHeaderCount} header fields`, { status: 431 });
  }
  let bytes = 0;
  let hosts = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    bytes += name.length + rawHeaders[i + 1]!.length + 4; // "name: value\r\n"
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
  }
  if (bytes > limits.maxHeaderBytes) {
    return new ProxyError('http_request_error', `header section larger than ${limits.maxHeaderBytes} bytes`, { status: 431 });
  }
  if (hosts > 1) return new ProxyError('http_request_error', 'more than one Host header field');
  return undefined;
}
