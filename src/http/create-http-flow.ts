import type { IncomingMessage } from 'node:http';
import type { ClientInfo } from '../core/connection.js';
import { ProxyError } from '../core/errors.js';
import { HttpFlow } from '../core/flow.js';
import { HeaderList } from '../core/header-list.js';
import { appendVia, stripHopByHopHeaders } from './hop-by-hop.js';
import { PROXY_NAME } from './error-response.js';
import { checkRequestHead, type RequestLimits } from './request-limits.js';
import { formatAuthority, parseRequestTarget } from './request-target.js';

/**
 * Turns a received request head into a flow whose `request` is ready to send: target parsed, hop-by-hop fields
 * removed, Host taken from the absolute URI (RFC 9112 §3.2.2: a proxy ignores the received Host), Via added.
 * Ordering matters: this runs before `requestHeaders`, so what hooks add survives.
 */
export function createHttpFlow(limits: RequestLimits, client: ClientInfo, req: IncomingMessage, isUpgrade: boolean): HttpFlow | ProxyError {
  const target = req.url ?? '';
  const refused = checkRequestHead({ target, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders }, limits);
  if (refused !== undefined) return refused;
  const parsed = parseRequestTarget(target);
  if (!parsed.ok) return new ProxyError('http_request_error', `bad request target: ${parsed.reason}`);
  if (parsed.target.form === 'origin') {
    return new ProxyError(
      'http_request_error',
      'this is getaway, a forward proxy: send requests in absolute form (for example curl -x http://<proxy> http://example.test/)',
    );
  }
  const { scheme, host, port, path } = parsed.target;
  const received = new HeaderList(req.rawHeaders);
  const headers = received.clone();
  stripHopByHopHeaders(headers);
  headers.set('Host', formatAuthority(host, port, scheme));
  appendVia(headers, req.httpVersion, PROXY_NAME);
  return new HttpFlow(
    client,
    { method: req.method ?? 'GET', target, httpVersion: req.httpVersion, headers: received },
    { method: req.method ?? 'GET', scheme, host, port, path, headers },
    isUpgrade,
  );
}
