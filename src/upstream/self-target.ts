/**
 * Loop protection: refuse to forward to the proxy's own listening address (a request for
 * http://127.0.0.1:8080/ to a proxy on 127.0.0.1:8080 would otherwise feed itself until it runs out of sockets).
 * Pure: the caller supplies the listening addresses and, for a wildcard listener, the host's interface addresses.
 */
import { canonicalIp } from '../core/addresses.js';

export interface SelfAddresses {
  port: number;
  /** Addresses that reach this listener, in canonicalIp() form. */
  addresses: ReadonlySet<string>;
  /** True when the listener is bound to 0.0.0.0 or ::, so every loopback address reaches it too. */
  wildcard: boolean;
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
