import { AddressRanges, canonicalIp } from '../core/addresses.js';
import type { Addon } from '../core/addon.js';
import { ProxyError } from '../core/errors.js';

/** Link-local and cloud metadata endpoints (AWS, GCP, Azure: 169.254.169.254; AWS IPv6: fd00:ec2::254; Alibaba). */
export const METADATA_RANGES: readonly string[] = ['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254', '100.100.100.200'];

/**
 * The operator's own networks: loopback, RFC 1918, CGNAT (RFC 6598), IPv6 unique-local, and the unspecified
 * addresses (connecting to 0.0.0.0 or :: reaches this host on Linux).
 */
export const PRIVATE_RANGES: readonly string[] = [
  '127.0.0.0/8', '::1', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7', '0.0.0.0/8', '::',
];

/** NAT64's well-known prefix (RFC 6052): 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a NAT64 gateway. */
const NAT64 = new AddressRanges(['64:ff9b::/96']);

export interface DestinationPolicyOptions {
  /** Refuse PRIVATE_RANGES too; getaway does when it listens beyond loopback, unless `allowPrivate`. */
  refusePrivate: boolean;
  /** Addresses or CIDRs allowed whatever the lists above say (a metadata endpoint a job really needs). */
  allow?: readonly string[];
}

/**
 * Refuses destinations by the address actually dialled (the `dialing` hook: after DNS, on every reused pooled
 * connection, for requests, tunnels, upgrades and intercepted requests): `http://0x7f.1/`, a rebinding DNS name
 * and an IPv4-mapped IPv6 literal are all caught, because the check never looks at the name. 403
 * `destination_ip_prohibited`. Through an upstream proxy the upstream dials, and this check does not run.
 */
export function destinationPolicy(options: DestinationPolicyOptions): Addon {
  const metadata = new AddressRanges(METADATA_RANGES);
  const internal = options.refusePrivate ? new AddressRanges(PRIVATE_RANGES) : undefined;
  const allowed = options.allow === undefined || options.allow.length === 0 ? undefined : new AddressRanges(options.allow);
  const category = (address: string): string | undefined => {
    if (metadata.hasCanonical(address)) return 'link-local or cloud metadata';
    if (internal?.hasCanonical(address)) return 'private or loopback';
    return undefined;
  };
  return {
    name: 'destination-policy',
    dialing(_flow, { host, ip, port }) {
      const address = canonicalIp(ip);
      if (allowed?.hasCanonical(address)) return;
      const nat64 = address.includes(':') && NAT64.hasCanonical(address);
      const refused = category(address) ?? (nat64 ? category(embeddedIpv4(address)) : undefined);
      if (refused === undefined) return;
      const via = host === ip ? '' : ` (${host} resolved to it)`;
      throw new ProxyError('destination_ip_prohibited', `${address}:${port} is a ${refused} address${via}`);
    },
  };
}

/** The IPv4 address in the last 32 bits of a compressed NAT64 address such as 64:ff9b::a9fe:a9fe. */
function embeddedIpv4(address: string): string {
  const groups = address.split(':');
  const low = parseInt(groups.at(-1) || '0', 16);
  const high = parseInt(groups.at(-2) || '0', 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
