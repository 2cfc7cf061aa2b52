/**
 * Which CONNECT targets are intercepted: `hosts` patterns (default: all), minus `excludeHosts`, minus hosts whose
 * clients refused our certificate (pinning), which are tunnelled untouched from then on.
 */
import { parseHostPattern, type HostPattern } from '../upstream/host-pattern.js';

/** Hosts remembered as pinned, oldest forgotten first past this many. */
const MAX_PINNED = 10_000;

export class MitmPolicy {
  readonly #include: HostPattern[];
  readonly #exclude: HostPattern[];
  readonly #pinned = new Set<string>();

  constructor(hosts: readonly string[] | undefined, excludeHosts: readonly string[] | undefined) {
    this.#include = (hosts ?? ['*']).map((p) => parseHostPattern(p));
    this.#exclude = (excludeHosts ?? []).map((p) => parseHostPattern(p));
  }

  shouldIntercept(host: string, port: number): boolean {
    const name = host.toLowerCase();
    if (this.#pinned.has(name)) return false;
    return this.#include.some((p) => p.matches(name, port)) && !this.#exclude.some((p) => p.matches(name, port));
  }

  /** Returns false when the host was already known as pinned. */
  markPinned(host: string): boolean {
    const name = host.toLowerCase();
    if (this.#pinned.has(name)) return false;
    this.#pinned.add(name);
    if (this.#pinned.size > MAX_PINNED) this.#pinned.delete(this.#pinned.values().next().value!);
    return true;
  }
}
