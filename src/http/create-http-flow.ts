import type { IncomingMessage } from 'node:http';
import type { ClientInfo } from '../core/connection.js';
import { ProxyError } from '../core/errors.js';
import { HttpFlow, type OutboundRequest } from '../core/flow.js';
import type { Interception } from '../core/runtime.js';
import { HeaderList } from '../core/header-list.js';
import { appendVia, stripHopByHopHeaders, viaNames } from './hop-by-hop.js';
import { checkRequestHead, type RequestLimits } from './request-limits.js';
import { formatAuthority, parseRequestTarget } from './request-target.js';

/**
 * Turns a received request head into a flow whose `request` is ready to send: target parsed, hop-by-hop fields
 * removed, Host taken from the absolute URI (RFC 9112 §3.2.2: a proxy ignores the received Host), Via added.
 * Ordering matters: this runs before `requestHeaders`, so what hooks add survives.
 */
export function createHttpFlow(
  limits: RequestLimits,
  pseudonym: string,
  client: ClientInfo,
  req: IncomingMessage,
  isUpgrade: boolean,
  interception?: Interception,
): HttpFlow | ProxyError {
  const target = req.url ?? '';
  const refused = checkRequestHead({ target, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders }, limits);
  if (refused !== undefined) return refused;
  const parsed = parseRequestTarget(target);
  if (!parsed.ok) return new ProxyError('http_request_error', `bad request target: ${parsed.reason}`);
  const received = new HeaderList(req.rawHeaders);
  if (viaNames(received, pseudonym)) return new ProxyError('proxy_loop_detected', `this request already passed through this proxy (Via names ${pseudonym})`);
  const headers = received.clone();
  stripHopByHopHeaders(headers);
  let outbound: OutboundRequest;
  if (parsed.target.form === 'absolute') {
    const { scheme, host, port, path } = parsed.target;
    headers.set('Host', formatAuthority(host, port, scheme));
    outbound = { method: req.method ?? 'GET', scheme, host, port, path, headers };
  } else if (interception !== undefined) {
    // Inside an intercepted tunnel requests are origin-form, as the client would send them to the origin. They go
    // where the CONNECT said; Host stays what the client sent (it is what the origin would have seen).
    const { host, port } = interception;
    if (!headers.has('host')) headers.set('Host', formatAuthority(host, port, 'https'));
    outbound = { method: req.method ?? 'GET', scheme: 'https', host, port, path: parsed.target.path, headers };
  } else {
    return new ProxyError(
      'http_request_error',
      'this is getaway, a forward proxy: send requests in absolute form (for example curl -x http://<proxy> http://example.test/)',
    );
  }
  appendVia(headers, req.httpVersion, pseudonym);
  return new HttpFlow(client, { method: req.method ?? 'GET', target, httpVersion: req.httpVersion, headers: received }, outbound, isUpgrade, interception?.tunnel);
}
