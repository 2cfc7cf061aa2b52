import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { ClientInfo } from '../core/connection.js';
import { ProxyError } from '../core/errors.js';
import { HttpFlow, type OutboundRequest } from '../core/flow.js';
import type { Interception } from '../core/runtime.js';
import { HeaderList } from '../core/header-list.js';
import { appendVia, stripHopByHopHeaders, viaNames } from './hop-by-hop.js';
import { checkRequestHead, type RequestLimits } from './request-limits.js';
import { formatAuthority, parseHostField, parseRequestTarget, type AbsoluteTarget, type OriginTarget } from './request-target.js';

/**
 * Inside an intercepted tunnel every request must be for the tunnel's own authority: the connect hook decided on
 * that host, so a request naming another (in absolute form, or in Host) would slip past the policy that admitted
 * the tunnel, like domain fronting. Absolute form must match host and port; Host must match the host (its port, if
 * any, the tunnel's). A CONNECT to an IP address fixes the destination but not the name, so Host is free there.
 * Refused with 421 Misdirected Request (RFC 9110 §15.5.20), which tells a client to try another connection.
 */
function checkTunnelAuthority(target: AbsoluteTarget | OriginTarget, received: HeaderList, interception: Interception): ProxyError | undefined {
  const tunnel = `${interception.host}:${interception.port}`;
  const misdirected = (what: string): ProxyError =>
    new ProxyError('http_request_denied', `${what} inside the tunnel to ${tunnel}`, { status: 421 });
  if (target.form === 'absolute') {
    if (target.host !== interception.host.toLowerCase() || target.port !== interception.port) return misdirected(`a request for ${target.host}:${target.port}`);
    return undefined;
  }
  if (isIP(interception.host) !== 0) return undefined;
  const host = received.get('host');
  if (host === undefined) return undefined;
  const field = parseHostField(host);
  if (!field.ok || field.target.host !== interception.host.toLowerCase() || (field.target.port !== undefined && field.target.port !== interception.port)) {
    return misdirected(`Host "${host}"`);
  }
  return undefined;
}

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
  redirectedHost?: string,
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
  if (interception !== undefined) {
    // Inside an intercepted tunnel requests go where the CONNECT said, over TLS, whatever their form; they are
    // origin-form as a client sends them to the origin, and Host stays what the client sent (what the origin would
    // have seen). Either must name the tunnel's own authority.
    const misdirected = checkTunnelAuthority(parsed.target, received, interception);
    if (misdirected !== undefined) return misdirected;
    const { host, port } = interception;
    if (parsed.target.form === 'absolute' || !headers.has('host')) headers.set('Host', formatAuthority(host, port, 'https'));
    outbound = { method: req.method ?? 'GET', scheme: 'https', host, port, path: parsed.target.path, headers };
  } else if (client.destination !== undefined) {
    // The listener knew where the client meant to connect (a transparent listener): requests go there, as plain
    // HTTP, whatever their target names. Host stays what the client sent; the flow goes by `redirectedHost` (the
    // client's name when it resolves to the destination, else the destination's address: transparent/request-host.ts).
    const { port } = client.destination;
    const host = redirectedHost ?? client.destination.host;
    if (!headers.has('host')) headers.set('Host', formatAuthority(host, port, 'http'));
    outbound = { method: req.method ?? 'GET', scheme: 'http', host, port, path: parsed.target.path, headers };
  } else if (parsed.target.form === 'absolute') {
    const { scheme, host, port, path } = parsed.target;
    headers.set('Host', formatAuthority(host, port, scheme));
    outbound = { method: req.method ?? 'GET', scheme, host, port, path, headers };
  } else {
    return new ProxyError(
      'http_request_error',
      'this is getaway, a forward proxy: send requests in absolute form (for example curl -x http://<proxy> http://example.test/)',
    );
  }
  appendVia(headers, req.httpVersion, pseudonym);
  return new HttpFlow(client, { method: req.method ?? 'GET', target, httpVersion: req.httpVersion, headers: received }, outbound, isUpgrade, interception?.tunnel);
}
