/**
 * Host patterns shared by routing rules and NO_PROXY: domain names with suffix matching on label boundaries,
 * IP addresses, CIDR ranges, and optional ports. Pure.
 */
import { BlockList, isIP } from 'node:net';

export interface HostPattern {
  readonly source: string;
  matches(host: string, port: number): boolean;
}

/**
 * "*" matches everything. "example.com" and ".example.com" match example.com and every name under it (curl and
 * Python's reading of a leading dot; Go matches only names under it for ".example.com"). "*.example.com" matches
 * only names under it, not example.com itself (what a glob says, and what curl and Go do with NO_PROXY).
 * "10.0.0.0/8" and "2001:db8::/32" match IP targets inside the range; "192.0.2.1" and "::1" match that address.
 * A ":port" suffix ("example.com:8080", "[::1]:8080") restricts the pattern to that port, as Go allows.
 */
export function parseHostPattern(text: string): HostPattern {
  const source = text.trim().toLowerCase();
  if (source === '') throw new Error('empty host pattern');
  if (source === '*') return { source, matches: () => true };

  let body = source;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(body);
  if (bracketed !== null) {
    body = bracketed[1]!;
    port = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
  } else if (!body.includes('/') && isIP(body) !== 6) {
    const colon = body.lastIndexOf(':');
    if (colon !== -1) {
      const portText = body.slice(colon + 1);
      if (!/^\d{1,5}$/.test(portText)) throw new Error(`bad port in host pattern "${text}"`);
      port = Number(portText);
      body = body.slice(0, colon);
    }
  }
  const portMatches = (candidate: number): boolean => port === undefined || port === candidate;

  if (body.includes('/')) {
    const [address, bitsText] = body.split('/') as [string, string];
    const family = isIP(address);
    const bits = Number(bitsText);
    if (family === 0 || !/^\d{1,3}$/.test(bitsText) || bits > (family === 4 ? 32 : 128)) throw new Error(`bad CIDR range "${text}"`);
    const list = new BlockList();
    list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
    return {
      source,
      matches(host, candidatePort) {
        const hostFamily = isIP(host);
        return hostFamily !== 0 && portMatches(candidatePort) && list.check(host, hostFamily === 4 ? 'ipv4' : 'ipv6');
      },
    };
  }
  if (isIP(body) !== 0) {
    return { source, matches: (host, candidatePort) => portMatches(candidatePort) && host.toLowerCase() === body };
  }
  const subdomainsOnly = body.startsWith('*.');
  const domain = body.replace(/^\*?\./, '');
  if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/.test(domain)) throw new Error(`bad host pattern "${text}"`);
  const suffix = `.${domain}`;
  return {
    source,
    matches(host, candidatePort) {
      const name = host.toLowerCase();
      return portMatches(candidatePort) && ((!subdomainsOnly && name === domain) || name.endsWith(suffix));
    },
  };
}
