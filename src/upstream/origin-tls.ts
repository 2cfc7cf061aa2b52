/**
 * TLS towards origins and upstream proxies, set up in one place: the trust (system roots, plus a bundle, unless
 * verification is off), the server name (SNI is for names only: RFC 6066 §3 forbids IP literals there) and ALPN
 * (HTTP/1.1 is all getaway speaks on the origin leg).
 */
import { isIP, type Socket } from 'node:net';
import { connect, rootCertificates, type ConnectionOptions, type TLSSocket } from 'node:tls';

/** Spread into every TLS connection to an origin or upstream. `ca: undefined` keeps Node's default store. */
export interface OriginTlsOptions {
  /** Trust anchors when a caBundle is configured (system roots + bundle). */
  ca: string[] | undefined;
  rejectUnauthorized: boolean;
}

export function originTrust(caBundle: readonly string[], insecure: boolean): OriginTlsOptions {
  return {
    // Passing `ca` replaces Node's default trust store, so the system roots are named explicitly next to the bundle.
    ca: caBundle.length > 0 ? [...rootCertificates, ...caBundle] : undefined,
    rejectUnauthorized: !insecure,
  };
}

/** The SNI to send for `host`: the name itself, nothing for an IP literal. */
export function serverNameFor(host: string): string | undefined {
  return isIP(host) === 0 ? host : undefined;
}

/**
 * Starts TLS over an open connection to `host` (an origin, or an https:// upstream). `serverName` overrides the
 * SNI (interception's probe sends the client's own); `trust: 'none'` skips verification for a probe that only
 * reads the certificate's names.
 */
export function startOriginTls(socket: Socket, host: string, trust: OriginTlsOptions | 'none', serverName = serverNameFor(host)): TLSSocket {
  const options = originTlsOptions(trust, serverName);
  options.socket = socket;
  return connect(options);
}

/** The options of a TLS connection to an origin or upstream: trust, SNI (none for an IP literal), ALPN. */
export function originTlsOptions(trust: OriginTlsOptions | 'none', serverName: string | undefined): ConnectionOptions {
  const options: ConnectionOptions = { ALPNProtocols: ['http/1.1'] };
  if (trust === 'none') options.rejectUnauthorized = false;
  else {
    options.rejectUnauthorized = trust.rejectUnauthorized;
    if (trust.ca !== undefined) options.ca = trust.ca;
  }
  if (serverName !== undefined) options.servername = serverName;
  return options;
}
