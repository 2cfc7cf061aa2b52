/**
 * Which CONNECT targets are intercepted: `hosts` patterns (default: all), minus `excludeHosts`, minus the hosts a
 * client refused our certificate for (pinning), which that client's tunnels to that host carry untouched from then on.
 */
import type { Addon } from '../core/addon.js';
import { parseHostPattern, type HostPattern } from '../core/host-pattern.js';

/**
 * Client and host pairs remembered as pinned, least recently refused forgotten first past this many. Keyed per
 * client (its authenticated user, else its address: pinnedClientKey), not per host: a refusal is one client's
 * behaviour, and a global set let any client switch off inspection of a host for every other client by sending one
 * bad_certificate alert.
 */
const MAX_PINNED = 10_000;

export class MitmPolicy {
  readonly #include: HostPattern[];
  readonly #exclude: HostPattern[];
  readonly #pinned = new Set<string>();

  constructor(hosts: readonly string[] | undefined, excludeHosts: readonly string[] | undefined) {
    this.#include = (hosts ?? ['*']).map((p) => parseHostPattern(p));
    this.#exclude = (excludeHosts ?? []).map((p) => parseHostPattern(p));
  }

  shouldIntercept(host: string, port: number, client: string): boolean {
    const name = host.toLowerCase();
    if (this.#pinned.size > 0 && this.#pinned.has(pinKey(client, name))) return false;
    return this.#include.some((p) => p.matches(name, port)) && !this.#exclude.some((p) => p.matches(name, port));
  }

  /** Remembers that this client refused our certificate for this host. Returns false when it was already known. */
  markPinned(host: string, client: string): boolean {
    const key = pinKey(client, host.toLowerCase());
    if (this.#pinned.has(key)) return false;
    this.#pinned.add(key);
    if (this.#pinned.size > MAX_PINNED) this.#pinned.delete(this.#pinned.values().next().value!);
    return true;
  }
}

/** Who a pinning refusal is remembered for: the authenticated user when there is one (users share NAT addresses). */
export function pinnedClientKey(flow: { user: string | undefined; client: { remoteAddress: string } }): string {
  return flow.user === undefined ? flow.client.remoteAddress : `user:${flow.user}`;
}

function pinKey(client: string, host: string): string {
  return `${client} ${host}`;
}

/**
 * The built-in interception decision as an addon, run before the user's: it sets `flow.action = 'mitm'` for the
 * CONNECTs the policy covers, and a later `connect` hook may set it back to "tunnel" (or to "mitm" for others).
 */
export function interceptionPolicy(policy: MitmPolicy): Addon {
  return {
    name: 'interception-policy',
    connect(flow) {
      if (policy.shouldIntercept(flow.target.host, flow.target.port, pinnedClientKey(flow))) flow.action = 'mitm';
    },
  };
}
