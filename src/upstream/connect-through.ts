/**
 * Opens a byte stream to host:port along a route: directly, through an HTTP(S) proxy with CONNECT, or through a
 * SOCKS5 proxy. Tunnels use it as is; plain requests through SOCKS and https:// requests through any upstream use
 * it under an Agent (route-agents.ts).
 *
 *   direct        getaway ──TCP──▶ host:port
 *   http(s)://    getaway ──TCP(+TLS)──▶ upstream ──CONNECT host:port, any 2xx──▶ host:port
 *   socks5(h)://  getaway ──TCP──▶ upstream ──SOCKS5 CONNECT (address | name)──▶ host:port
 */
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ProxyError, toProxyError } from '../core/errors.js';
import { formatAuthority } from '../http/request-target.js';
import { startOriginTls, type OriginTlsOptions } from './origin-tls.js';
import type { ReadRelay } from '../tunnel/read-relay.js';
import type { DestinationGuard } from '../core/destination.js';
import type { DialTarget, Dialer } from './dialer.js';
import type { Route } from './route-planner.js';
import { parseRetryAfter } from './upstream-health.js';
import { proxyAuthorization, type UpstreamProxy } from './upstream-proxy.js';

export interface ConnectThroughOptions {
  connectTimeoutMs: number;
  /** How an https:// upstream's certificate is verified: the same trust as for origins (caBundle, insecureUpstreamTls). */
  tls: OriginTlsOptions;
  /** Direct connections (also the first hop to an upstream) go through this dialer. */
  dialer: Dialer;
  signal?: AbortSignal;
  /** For a CONNECT tunnel's direct route: the dialer reads the origin through it. Routes through upstreams ignore it. */
  reader?: ReadRelay;
  /** Checks the addresses a direct route dials (the flow's `dialing` hooks). An upstream's own address is not the flow's destination. */
  guard?: DestinationGuard;
  /**
   * Via for a CONNECT to an HTTP(S) upstream: the client's entries plus this proxy's, so a chain that leads back
   * here is recognised (RFC 9110 §7.6.3: a proxy sends Via in each message it forwards).
   */
  via?: string;
  /**
   * Written first on every connection to an upstream (before TLS): a PROXY protocol header naming the client, for
   * upstreams that want one (`upstreamProxyProtocol`).
   */
  proxyHeader?: Buffer | undefined;
}

export function connectThrough(route: Route, target: DialTarget, options: ConnectThroughOptions): Promise<Socket> {
  // Direct is every tunnel's path without upstreams: no async frame and no copy of the target for it.
  if (route.kind === 'direct') {
    const direct = route.localAddress === undefined ? target : { host: target.host, port: target.port, localAddress: route.localAddress };
    return options.dialer.dial(direct, options.signal, options.reader, options.guard);
  }
  return connectThroughUpstream(route.upstream, target, options);
}

/**
 * A connection to the upstream itself, ready for its protocol: dialled, the PROXY header written if one is due, TLS
 * up for an https:// upstream. Used for tunnels below and by the agents that forward in absolute form.
 */
export async function openUpstreamConnection(upstream: UpstreamProxy, options: ConnectThroughOptions, deadline = Date.now() + options.connectTimeoutMs): Promise<Socket> {
  const first = await options.dialer.dial({ host: upstream.host, port: upstream.port }, options.signal).catch((err: unknown) => {
    throw relabel(toProxyError(err, 'connection_refused'), upstream).blamingUpstream();
  });
  if (options.proxyHeader !== undefined) first.write(options.proxyHeader);
  if (upstream.protocol !== 'https') return first;
  try {
    return await startTls(first, upstream, options.tls, deadline);
  } catch (err) {
    first.destroy();
    throw err;
  }
}

async function connectThroughUpstream(upstream: UpstreamProxy, target: DialTarget, options: ConnectThroughOptions): Promise<Socket> {
  const deadline = Date.now() + options.connectTimeoutMs;
  const hop = await openUpstreamConnection(upstream, options, deadline);
  try {
    if (upstream.protocol === 'socks5' || upstream.protocol === 'socks5h') return await socksConnect(hop, upstream, target, deadline);
    return await httpConnect(hop, upstream, target, deadline, options.via);
  } catch (err) {
    hop.destroy();
    throw err instanceof ProxyError ? err : relabel(toProxyError(err, 'connection_terminated'), upstream).blamingUpstream();
  }
}

function relabel(error: ProxyError, upstream: UpstreamProxy): ProxyError {
  return new ProxyError(error.type, `upstream ${upstream.id}: ${error.message}`, { cause: error, upstreamFault: error.upstreamFault });
}

function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

/**
 * `upstreamFault` says whether running out of time blames the upstream: a TLS handshake with it does, but its
 * answer to CONNECT (or SOCKS) comes only once it has reached the target, so a slow target is not its fault.
 */
function withDeadline<T>(deadline: number, upstream: UpstreamProxy, what: string, upstreamFault: boolean, work: Promise<T>, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new ProxyError('connection_timeout', `upstream ${upstream.id}: no ${what} in time`, { upstreamFault }));
    }, remaining(deadline));
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function startTls(socket: Socket, upstream: UpstreamProxy, trust: OriginTlsOptions, deadline: number): Promise<TLSSocket> {
  const tls = startOriginTls(socket, upstream.host, trust);
  const secured = new Promise<TLSSocket>((resolve, reject) => {
    tls.once('secureConnect', () => resolve(tls));
    tls.once('error', (err) => reject(relabel(toProxyError(err, 'tls_protocol_error'), upstream).blamingUpstream()));
  });
  return withDeadline(deadline, upstream, 'TLS handshake', true, secured, () => tls.destroy());
}

/**
 * CONNECT over an already open connection to the upstream, with llhttp reading the answer. Any 2xx opens the
 * tunnel (RFC 9110 §9.3.6; some proxies say 200 with other reasons, some 201 or 204); anything else is a
 * refusal by this upstream, which the caller may fail over from.
 */
function httpConnect(hop: Socket, upstream: UpstreamProxy, target: DialTarget, deadline: number, via: string | undefined): Promise<Socket> {
  const authority = formatAuthority(target.host, target.port);
  const headers = ['Host', authority];
  if (via !== undefined) headers.push('Via', via);
  const authorization = proxyAuthorization(upstream);
  if (authorization !== undefined) headers.push('Proxy-Authorization', authorization);
  const req = httpRequest({ method: 'CONNECT', path: authority, headers, createConnection: () => hop, agent: undefined });
  const answered = new Promise<Socket>((resolve, reject) => {
    req.once('connect', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        // Bytes that came with the 2xx already belong to the tunnel (a server-first protocol).
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(
        new ProxyError('connection_refused', `upstream ${upstream.id} answered CONNECT with ${status} ${res.statusMessage ?? ''}`.trim(), {
          // When no other upstream can serve, the client learns what the last one said: a refusal (403) or load
          // shedding (429, with its Retry-After) is meaningful to it; our credentials (407) or its failures are ours: 502.
          status: status === 403 || status === 429 ? status : 502,
          upstreamStatus: status,
          retryAfterMs: parseRetryAfter(res.headers['retry-after'], Date.now()),
          // It answered, so it works; only refusing our credentials is a fault of its (or our) configuration.
          upstreamFault: status === 407,
        }),
      );
    });
    // A connection that breaks, or an answer llhttp cannot parse, before any status: the upstream's own failure.
    req.once('error', (err) => reject(relabel(toProxyError(err, 'connection_terminated'), upstream).blamingUpstream()));
    req.end();
  });
  return withDeadline(deadline, upstream, 'answer to CONNECT', false, answered, () => req.destroy());
}

/** The socks library's texts (its ERRORS table, not exported) for a reply refusing the target and for its own timeout. */
const SOCKS5_TARGET_REFUSED = 'Socks5 proxy rejected connection';
const SOCKS_TIMED_OUT = 'Proxy connection timed out';

async function socksConnect(hop: Socket, upstream: UpstreamProxy, target: DialTarget, deadline: number): Promise<Socket> {
  // socks5:// resolves names here and sends an address; socks5h:// lets the proxy resolve (curl's naming).
  let host = target.host;
  if (upstream.protocol === 'socks5' && isIP(host) === 0) {
    host = await lookup(host).then(
      (answer) => answer.address,
      (err: unknown) => {
        throw toProxyError(err, 'dns_error');
      },
    );
  }
  // Loaded on first use: most proxies never see a SOCKS upstream, and every module loaded at start grows the heap.
  const { SocksClient } = await import('socks');
  const handshake = SocksClient.createConnection({
    existing_socket: hop,
    command: 'connect',
    destination: { host, port: target.port },
    proxy: {
      host: upstream.host,
      port: upstream.port,
      type: 5,
      ...(upstream.username === undefined ? {} : { userId: upstream.username, password: upstream.password ?? '' }),
    },
    timeout: remaining(deadline),
  }).then(
    ({ socket }) => socket,
    (err: unknown) => {
      // The socks library reports failures as plain Errors with text only; it is the one place we keep its words,
      // and the one place we read them: a reply that refuses the target (network or host unreachable, refused,
      // not allowed, an origin name a socks5h proxy could not resolve) comes from a working proxy, while failed
      // authentication, a broken handshake or a closed socket are the proxy's own.
      const message = err instanceof Error ? err.message : String(err);
      const answeredForTarget = message.startsWith(SOCKS5_TARGET_REFUSED) || message.startsWith(SOCKS_TIMED_OUT);
      throw new ProxyError('connection_refused', `upstream ${upstream.id}: SOCKS5 ${message}`, { cause: err, upstreamFault: !answeredForTarget });
    },
  );
  return withDeadline(deadline, upstream, 'SOCKS5 handshake', false, handshake, () => hop.destroy());
}
