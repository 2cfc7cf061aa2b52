/**
 * Refuses response framing that a downstream parser could read differently from ours. llhttp (strict) already
 * rejects Content-Length with Transfer-Encoding and differing lengths; what it accepts but we must not relay is a
 * transfer coding other than a single final "chunked" (RFC 9112 §6.1: chunked at most once; any other coding
 * would reach the client undecoded once Transfer-Encoding, a hop-by-hop field, is removed). Pure.
 */
import { ProxyError } from '../core/errors.js';
import type { HeaderList } from '../core/header-list.js';

export function checkResponseFraming(headers: HeaderList): ProxyError | undefined {
  const codings = headers.getTokens('transfer-encoding');
  if (codings.length === 0 || (codings.length === 1 && codings[0] === 'chunked')) return undefined;
  return new ProxyError('http_response_transfer_coding', `origin sent Transfer-Encoding "${codings.join(', ')}"; only a single "chunked" is relayed`);
}
