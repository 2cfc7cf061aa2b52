/**
 * The policy of `getaway run` for CI, learn then enforce: hosts a run may reach (`--allow`, `--allow-file`, or the
 * list a learning run wrote) and hosts it may not (`--deny`, which wins). Outside the policy a request is refused
 * with 403 when enforcing, or only noted otherwise. Patterns are the proxy's host patterns (core/host-pattern.ts):
 * "registry.npmjs.org", ".npmjs.org" (the name and everything under it), "*.example.com", "10.0.0.0/8", ":port".
 */
import type { Addon } from '../core/addon.js';
import { ProxyError } from '../core/errors.js';
import { parseHostPattern, type HostPattern } from '../core/host-pattern.js';
import { redactUrl } from './audit-recorder.js';
import { formatAbsoluteUrl } from '../http/request-target.js';

export interface AuditPolicyOptions {
  allow: readonly string[];
  deny: readonly string[];
  /** Refuse what the policy does not allow (403); otherwise only note it. */
  enforce: boolean;
}

/** A request outside the policy, as the report lists it. */
export interface PolicyViolation {
  time: string;
  method: string;
  target: string;
  host: string;
  /** "denied by --deny PATTERN" or "not in the allow list". */
  rule: string;
  /** True when the request was refused (enforcing); false when it was only noted. */
  refused: boolean;
}

/** Parses `text` of an allow file: one pattern per line, blank lines and # comments skipped. */
export function parsePolicyFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
}

/** The learn file's text: the hosts reached, one per line, sorted, with a header saying what made it. */
export function formatLearnedHosts(hosts: readonly string[], command: string): string {
  const names = [...new Set(hosts)].sort();
  return `# hosts reached by: ${command}\n# written by getaway run --learn; use with --allow-file and --enforce\n${names.join('\n')}\n`;
}

export class AuditPolicy {
  readonly #allow: HostPattern[];
  readonly #deny: HostPattern[];
  readonly #enforce: boolean;
  readonly violations: PolicyViolation[] = [];

  /** Throws with every pattern that does not parse. */
  constructor(options: AuditPolicyOptions) {
    const problems: string[] = [];
    const parse = (list: readonly string[], flag: string): HostPattern[] =>
      list.flatMap((text) => {
        try {
          return [parseHostPattern(text)];
        } catch (err) {
          problems.push(`${flag} ${text}: ${(err as Error).message}`);
          return [];
        }
      });
    this.#allow = parse(options.allow, '--allow');
    this.#deny = parse(options.deny, '--deny');
    if (problems.length > 0) throw new Error(problems.join('; '));
    this.#enforce = options.enforce;
  }

  get isEmpty(): boolean {
    return this.#allow.length === 0 && this.#deny.length === 0;
  }

  /** Why `host:port` is outside the policy, or undefined when it is inside. */
  #breach(host: string, port: number): string | undefined {
    const denied = this.#deny.find((pattern) => pattern.matches(host, port));
    if (denied !== undefined) return `denied by --deny ${denied.source}`;
    if (this.#allow.length > 0 && !this.#allow.some((pattern) => pattern.matches(host, port))) return 'not in the allow list';
    return undefined;
  }

  #check(method: string, target: string, host: string, port: number): void {
    const rule = this.#breach(host, port);
    if (rule === undefined) return;
    this.violations.push({ time: new Date().toISOString(), method, target, host, rule, refused: this.#enforce });
    if (this.#enforce) throw new ProxyError('http_request_denied', `${host} is outside the run's policy (${rule})`);
  }

  /** The addon: it runs ahead of the recorder, on every request and CONNECT. */
  addon(): Addon {
    return {
      name: 'audit-policy',
      requestHeaders: (flow) => {
        // Requests inside an intercepted tunnel were judged with the CONNECT.
        if (flow.tunnel !== undefined) return;
        this.#check(flow.request.method, redactUrl(formatAbsoluteUrl(flow.request)), flow.request.host, flow.request.port);
      },
      connect: (flow) => this.#check('CONNECT', `${flow.target.host}:${flow.target.port}`, flow.target.host, flow.target.port),
    };
  }
}
