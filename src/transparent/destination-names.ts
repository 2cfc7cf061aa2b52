/**
 * Whether a name a redirected client sent (Host, SNI) belongs to the address it actually connected to. Trusting the
 * name unchecked would let a client pick any policy it likes: connect to a denied site's address and say
 * `Host: allowed.example` (squid's CVE-2009-0801). A name checks out when it resolves, here, to the original
 * destination; otherwise the destination's address is what the flow names and the rules see.
 */
import { canonicalIp } from '../core/addresses.js';

/** Answers for a name and address are kept this long: a page's many requests ask once. */
const REMEMBER_MS = 30_000;
const MAX_REMEMBERED = 4096;

export type ResolveAll = (name: string) => Promise<string[]>;

export class DestinationNames {
  readonly #resolveAll: ResolveAll;
  readonly #remembered = new Map<string, { matches: boolean; until: number }>();

  constructor(resolveAll: ResolveAll) {
    this.#resolveAll = resolveAll;
  }

  /** True when `name` resolves to `address` (a failed lookup is a mismatch). */
  async matches(name: string, address: string): Promise<boolean> {
    const wanted = canonicalIp(address);
    const key = `${name.toLowerCase()}|${wanted}`;
    const now = Date.now();
    const known = this.#remembered.get(key);
    if (known !== undefined && known.until > now) return known.matches;
    let matches = false;
    try {
      matches = (await this.#resolveAll(name)).some((found) => canonicalIp(found) === wanted);
    } catch {
      matches = false;
    }
    this.#remembered.delete(key);
    this.#remembered.set(key, { matches, until: now + REMEMBER_MS });
    if (this.#remembered.size > MAX_REMEMBERED) this.#remembered.delete(this.#remembered.keys().next().value!);
    return matches;
  }
}
