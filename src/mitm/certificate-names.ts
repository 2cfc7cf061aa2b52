/**
 * Which names a minted leaf carries (the policy; minting is leaf-certificates.ts). Pure.
 * The client's SNI first (what it will check), else the CONNECT host; an IP target gets an IP SAN; optional names
 * from the origin's own certificate complete it (mitmproxy's upstream_cert). CN is the first name when it fits
 * in 64 characters (RFC 5280 ub-common-name); otherwise it is left out and the SAN made critical.
 */
import { isIP } from 'node:net';

export interface LeafNames {
  commonName: string | undefined;
  dnsNames: string[];
  ipAddresses: string[];
}

const MAX_NAMES = 100;

export function chooseLeafNames(input: { sni: string | undefined; connectHost: string; originNames?: readonly string[] }): LeafNames {
  const names: string[] = [];
  const add = (name: string | undefined): void => {
    if (name === undefined || name === '') return;
    const normal = name.toLowerCase().replace(/\.$/, '');
    if (!names.includes(normal) && names.length < MAX_NAMES) names.push(normal);
  };
  add(input.sni);
  add(input.connectHost);
  for (const name of input.originNames ?? []) add(name);
  const first = names[0]!;
  return {
    commonName: first.length <= 64 ? first : undefined,
    dnsNames: names.filter((n) => isIP(n) === 0),
    ipAddresses: names.filter((n) => isIP(n) !== 0),
  };
}

/** The cache key of a leaf: its names (order kept: the first is the CN) and its key kind. */
export function leafCacheKey(names: LeafNames, keyKind: string): string {
  return `${keyKind}|${names.dnsNames.join(',')}|${names.ipAddresses.join(',')}|${names.commonName ?? ''}`;
}
