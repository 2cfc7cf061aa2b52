import { AddressRanges } from '../core/addresses.js';
import type { Addon } from '../core/addon.js';

/**
 * Admits only clients whose address is in `ranges` (CIDRs or addresses). Others are closed in `clientConnected`,
 * before a byte of theirs is parsed: no error response, nothing to learn about the proxy.
 *
 * @example
 * createProxy({ host: '0.0.0.0', addons: [clientAllowList(['10.0.0.0/8', '192.168.1.0/24'])] });
 */
export function clientAllowList(ranges: readonly string[]): Addon {
  const allowed = new AddressRanges(ranges);
  return {
    name: 'client-allow-list',
    clientConnected(client) {
      if (!allowed.has(client.remoteAddress)) throw new Error(`client ${client.remoteAddress} is not in allowClients`);
    },
  };
}
