/**
 * Allow/deny rules in the style of squid's http_access: each rule names conditions (client CIDRs, users,
 * destination host patterns, destination CIDRs, ports, methods) and an action; the first rule whose conditions
 * all hold decides. A rule on destination CIDRs is decided when the address is known, after DNS (the `dialing`
 * hook), so a name cannot hide where it leads; the rules before it have been passed by then. An allowing rule may
 * also choose the route (`via`: an upstream group or "direct").
 */
import { AddressRanges } from '../core/addresses.js';
import type { Addon } from '../core/addon.js';
import { ProxyError } from '../core/errors.js';
import type { Flow, RouteChoice } from '../core/flow.js';
import { parseHostPattern, type HostPattern } from '../core/host-pattern.js';
import { parsePortList, type PortList } from './connect-ports.js';

export interface AccessRule {
  /** Shown in the log and in the refusal's details; default "#<position>". */
  name?: string;
  action: 'allow' | 'deny';
  /** Client addresses or CIDRs (the real client behind a PROXY protocol balancer). */
  clients?: string[];
  /** Authenticated users; "*" is any authenticated user. A rule with users never matches an anonymous flow. */
  users?: string[];
  /** Destination host patterns, as in route rules: "example.com", "*.example.com", "10.0.0.0/8", "host:8080". */
  hosts?: string[];
  /** Destination addresses or CIDRs, matched against the address actually dialled. */
  destinations?: string[];
  /** Destination ports: "443", "80,443", "8000-8999". */
  ports?: string | Array<number | string>;
  /** Request methods (CONNECT for tunnels). */
  methods?: string[];
  /** For an allowing rule: the route to take, an upstream group or "direct". Not with `destinations`. */
  via?: string;
}

interface CompiledRule {
  readonly label: string;
  readonly allow: boolean;
  readonly clients: AddressRanges | undefined;
  readonly users: ReadonlySet<string> | undefined;
  readonly hosts: readonly HostPattern[] | undefined;
  readonly destinations: AddressRanges | undefined;
  readonly ports: PortList | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly route: RouteChoice | undefined;
}

/** Checks rules and says what is wrong with each, by position. Pure. */
export function checkAccessRules(rules: unknown, source: string): string[] {
  if (!Array.isArray(rules)) return [`${source}: expected an array of rules`];
  const problems: string[] = [];
  rules.forEach((rule: unknown, i) => {
    try {
      compile(rule as AccessRule, i);
    } catch (err) {
      problems.push(`${source}[${i}]: ${(err as Error).message}`);
    }
  });
  return problems;
}

function stringList(value: unknown, key: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.some((entry) => typeof entry !== 'string')) throw new Error(`${key}: expected a non-empty array of strings`);
  return value as string[];
}

function compile(rule: AccessRule, index: number): CompiledRule {
  if (typeof rule !== 'object' || rule === null) throw new Error('expected a rule object');
  if (rule.action !== 'allow' && rule.action !== 'deny') throw new Error('action: expected "allow" or "deny"');
  const known = new Set(['name', 'action', 'clients', 'users', 'hosts', 'destinations', 'ports', 'methods', 'via']);
  for (const key of Object.keys(rule)) if (!known.has(key)) throw new Error(`unknown key "${key}" (known: ${[...known].join(', ')})`);
  const clients = stringList(rule.clients, 'clients');
  const users = stringList(rule.users, 'users');
  const hosts = stringList(rule.hosts, 'hosts');
  const destinations = stringList(rule.destinations, 'destinations');
  const methods = stringList(rule.methods, 'methods');
  if (rule.via !== undefined && (typeof rule.via !== 'string' || rule.action !== 'allow' || destinations !== undefined)) {
    throw new Error('via: only on an allowing rule without destinations, naming an upstream group or "direct"');
  }
  const wrap = <T>(key: string, make: () => T): T => {
    try {
      return make();
    } catch (err) {
      throw new Error(`${key}: ${(err as Error).message}`);
    }
  };
  return {
    label: typeof rule.name === 'string' && rule.name !== '' ? `"${rule.name}"` : `#${index + 1}`,
    allow: rule.action === 'allow',
    clients: clients === undefined ? undefined : wrap('clients', () => new AddressRanges(clients)),
    users: users === undefined ? undefined : new Set(users),
    hosts: hosts === undefined ? undefined : wrap('hosts', () => hosts.map((pattern) => parseHostPattern(pattern))),
    destinations: destinations === undefined ? undefined : wrap('destinations', () => new AddressRanges(destinations)),
    ports: rule.ports === undefined ? undefined : wrap('ports', () => parsePortList(rule.ports!)),
    methods: methods === undefined ? undefined : new Set(methods.map((method) => method.toUpperCase())),
    route: rule.via === undefined ? undefined : rule.via === 'direct' ? 'direct' : { group: rule.via },
  };
}

interface Target {
  method: string;
  host: string;
  port: number;
}

function targetOf(flow: Flow): Target {
  return flow.kind === 'http'
    ? { method: flow.request.method, host: flow.request.host, port: flow.request.port }
    : { method: 'CONNECT', host: flow.target.host, port: flow.target.port };
}

/** Everything but the destination address: what is known when the request head arrives. */
function matchesHead(rule: CompiledRule, flow: Flow, target: Target): boolean {
  if (rule.clients !== undefined && !rule.clients.has(flow.client.remoteAddress)) return false;
  if (rule.users !== undefined && (flow.user === undefined || !(rule.users.has('*') || rule.users.has(flow.user)))) return false;
  if (rule.methods !== undefined && !rule.methods.has(target.method)) return false;
  if (rule.ports !== undefined && !rule.ports.has(target.port)) return false;
  if (rule.hosts !== undefined && !rule.hosts.some((pattern) => pattern.matches(target.host, target.port))) return false;
  return true;
}

/** Where a flow's evaluation stopped at the head: a rule on destinations, to be finished per address dialled. */
const pending = new WeakMap<Flow, number>();

/**
 * The rules as an addon. Flows no rule matches are allowed (the built-in defaults still apply): end the list with
 * `{ action: 'deny' }` for squid's "deny all" at the bottom.
 *
 * @example
 * accessRules([
 *   { name: 'staff', action: 'allow', users: ['*'], via: 'default' },
 *   { name: 'no-internal', action: 'deny', destinations: ['10.0.0.0/8'] },
 *   { action: 'deny' },
 * ])
 */
export function accessRules(rules: readonly AccessRule[]): Addon {
  const compiled = rules.map((rule, i) => compile(rule, i));
  const refuse = (rule: CompiledRule, what: string): ProxyError =>
    new ProxyError('http_request_denied', `${what} denied by access rule ${rule.label}`);

  /** Walks the rules from `start`; with `ip`, destination rules are decided too. */
  function decide(flow: Flow, start: number, ip: string | undefined): void {
    const target = targetOf(flow);
    for (let i = start; i < compiled.length; i++) {
      const rule = compiled[i]!;
      if (!matchesHead(rule, flow, target)) continue;
      if (rule.destinations !== undefined) {
        if (ip === undefined) {
          pending.set(flow, i);
          return;
        }
        if (!rule.destinations.has(ip)) continue;
      }
      if (!rule.allow) throw refuse(rule, ip === undefined ? `${target.method} ${target.host}:${target.port}` : `${target.host} (${ip}:${target.port})`);
      if (ip === undefined) {
        if (rule.route !== undefined) flow.route ??= rule.route;
        pending.delete(flow);
      }
      return;
    }
    // With an address, the pending start stays: every address of a name, and every reused connection, is judged.
    if (ip === undefined) pending.delete(flow);
  }

  const atHead = (flow: Flow): void => {
    // A decrypted request inside an intercepted tunnel is judged again: its method, host and path are now visible.
    decide(flow, 0, undefined);
  };
  return {
    name: 'access-rules',
    requestHeaders: atHead,
    connect: atHead,
    dialing(flow, { ip }) {
      const start = pending.get(flow);
      if (start !== undefined) decide(flow, start, ip);
    },
  };
}
