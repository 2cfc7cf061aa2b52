/**
 * Loop protection: refuse to forward to the proxy's own listening address (a request for
 * http://127.0.0.1:8080/ to a proxy on 127.0.0.1:8080 would otherwise feed itself until it runs out of sockets).
 * Pure: the caller supplies the listening addresses and, for a wildcard listener, the host's interface addresses.
 */
import { isIP } from 'node:net';

export interface SelfAddresses {
  port: number;
  /** Addresses that reach this listener, in canonicalIp() form. */
  addresses: ReadonlySet<string>;
  /** True when the listener is bound to 0.0.0.0 or ::, so every loopback address reaches it too. */
  wildcard: boolean;
}

/**
 * One spelling per address, so that comparing strings compares addresses: IPv6 in its compressed lower-case form
 * (RFC 5952, as the WHATWG URL parser writes it), and IPv4-mapped IPv6 in any spelling (`::ffff:7f00:1`,
 * `0:0:0:0:0:ffff:127.0.0.1`) as the IPv4 address it reaches. Anything that is not an IP address comes back lower-cased.
 */
export function canonicalIp(ip: string): string {
  const family = isIP(ip);
  if (family === 4) return ip;
  if (family !== 6) return ip.toLowerCase();
  let compressed: string;
  try {
    compressed = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    // A zone index (fe80::1%eth0) is valid for isIP but not in a URL; it names a link-local address, never mapped.
    return ip.toLowerCase();
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (mapped === null) return compressed;
  const high = parseInt(mapped[1]!, 16);
  const low = parseInt(mapped[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** Connecting to 0.0.0.0 or :: reaches the local host on Linux, so they count as self for any listener. */
const UNSPECIFIED = new Set(['0.0.0.0', '::']);

export function describeSelfAddresses(listenAddress: string, port: number, interfaceAddresses: readonly string[]): SelfAddresses {
  const bound = canonicalIp(listenAddress);
  const wildcard = UNSPECIFIED.has(bound);
  const addresses = new Set<string>(wildcard ? interfaceAddresses.map(canonicalIp) : [bound]);
  return { port, addresses, wildcard };
}

export function isSelfTarget(ip: string, port: number, self: SelfAddresses): boolean {
  if (port !== self.port) return false;
  const address = canonicalIp(ip);
  if (UNSPECIFIED.has(address) || self.addresses.has(address)) return true;
  return self.wildcard && (address.startsWith('127.') || address === '::1');
}
