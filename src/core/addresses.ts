/**
 * IP addresses and ranges as plain values (pure; node:net's BlockList does the range arithmetic): one spelling per
 * address, and CIDR lists that client allow-lists, destination checks and access rules match against.
 */
import { BlockList, isIP } from 'node:net';

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

/**
 * A set of CIDR ranges and single addresses ("10.0.0.0/8", "::1", "fd00::/8"), matched after canonicalIp(). It is
 * checked for every dial (the destination policy, per request on keep-alive), so IPv4 ranges are compared as
 * numbers here; BlockList, which builds a native SocketAddress per check, handles only IPv6.
 */
export class AddressRanges {
  readonly sources: readonly string[];
  /** [network, mask] pairs as unsigned 32-bit numbers. */
  readonly #ipv4: Array<[number, number]> = [];
  #ipv6: BlockList | undefined;

  /** Throws an Error naming the first entry that is not an address or a CIDR range. */
  constructor(entries: readonly string[]) {
    this.sources = entries;
    for (const entry of entries) {
      const [address = '', bitsText, extra] = entry.trim().split('/');
      const canonical = canonicalIp(address);
      const family = isIP(canonical);
      const max = family === 4 ? 32 : 128;
      const bits = bitsText === undefined ? max : Number(bitsText);
      if (family === 0 || extra !== undefined || (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) || bits > max) {
        throw new Error(`"${entry}" is not an IP address or CIDR range (like 10.0.0.0/8 or fd00::/8)`);
      }
      if (family === 4) {
        const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
        this.#ipv4.push([(ipv4Number(canonical) & mask) >>> 0, mask]);
      } else {
        (this.#ipv6 ??= new BlockList()).addSubnet(canonical, bits, 'ipv6');
      }
    }
  }

  has(ip: string): boolean {
    return this.hasCanonical(canonicalIp(ip));
  }

  /** has() for an address already in canonicalIp() form (saves normalising it again per check). */
  hasCanonical(address: string): boolean {
    const family = isIP(address);
    if (family === 4) {
      const value = ipv4Number(address);
      for (const [network, mask] of this.#ipv4) if (((value & mask) >>> 0) === network) return true;
      return false;
    }
    return family === 6 && this.#ipv6 !== undefined && this.#ipv6.check(address, 'ipv6');
  }
}

/** A dotted-quad IPv4 address (as isIP() accepts it) as an unsigned 32-bit number. */
function ipv4Number(address: string): number {
  let value = 0;
  let part = 0;
  for (let i = 0; i < address.length; i++) {
    const code = address.charCodeAt(i);
    if (code === 46) {
      value = value * 256 + part;
      part = 0;
    } else part = part * 10 + (code - 48);
  }
  return value * 256 + part;
}

/** True for names and addresses that only this machine reaches: a proxy listening there is not on the network. */
export function isLoopbackHost(host: string): boolean {
  const address = canonicalIp(host.replace(/^\[|\]$/g, ''));
  return address === 'localhost' || address === '::1' || address.startsWith('127.');
}
