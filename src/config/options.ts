/**
 * Options for createProxy(), their defaults, and validation with messages that name the key and say what
 * was expected. The config file uses the same keys (plus `listen` and `logLevel`, see config-file.ts).
 */
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Addon } from '../core/addon.js';
import type { Listener } from '../core/listener.js';
import type { TransparentMode } from '../listeners/transparent-listener.js';
import type { CoreOptions } from '../core/options.js';
import { ACCESS_KEYS, checkAccess, type AccessOptions } from './access-options.js';
import { OptionsError } from './options-error.js';

export { OptionsError };
import { readEnvProxy } from './env-proxy.js';
import { parseHostPattern } from '../core/host-pattern.js';
import type { Resolver } from '../upstream/dialer.js';
import type { RouteRuleSpec } from '../upstream/route-planner.js';
import { parseUpstreamProxy, type UpstreamSpec } from '../upstream/upstream-proxy.js';
import { STRATEGY_NAMES, type StrategyName } from '../upstream/upstream-strategy.js';

export interface ProxyOptions extends AccessOptions {
  /** Address to listen on. Default "127.0.0.1": a proxy open to the network is a choice, not a default. */
  host?: string;
  /** Port to listen on; 0 picks a free one (read it back with `proxy.address()`). Default 8080. */
  port?: number;
  /**
   * Whether the explicit proxy port (`host`/`port`) listens. Default true; false for a transparent-only proxy
   * (then `transparent` or `listeners` must give something to listen on).
   */
  explicit?: boolean;
  /**
   * A transparent listener for traffic Linux redirects here (nftables/iptables TPROXY or REDIRECT): clients need no
   * proxy settings. Linux only, with the native module `npm install` builds (docs/transparent.md).
   */
  transparent?: TransparentOptions;
  /** Addons, run in this order for every hook. */
  addons?: Addon[];
  /**
   * More listeners beside the explicit proxy port (`host`/`port`): each hands its connections to the same
   * admission, hooks and flows (see core/listener.ts). Started by listen(), closed by close().
   */
  listeners?: Listener[];
  /** Where the proxy and its addons log. Default: a silent logger. */
  logger?: Logger;
  /** Time allowed to open a TCP connection to an origin. Default 10 s. */
  connectTimeoutMs?: number;
  /** Time a client has to send a complete request head (slowloris guard). Default 30 s. */
  requestHeadersTimeoutMs?: number;
  /** How long an idle keep-alive client connection (between requests) is kept open. Default 60 s. */
  idleTimeoutMs?: number;
  /** How long the origin may stay silent while a request is in flight (head or body). Default 300 s. */
  responseTimeoutMs?: number;
  /**
   * How long a client may pause while sending a request body; past it the request fails with 408 and the
   * connection closes (a slowly sent body would otherwise hold an origin connection for ever). Time the body is
   * held back because the origin reads slowly does not count. Default 60 s.
   */
  requestBodyIdleTimeoutMs?: number;
  /**
   * A tunnel (CONNECT or upgraded connection) with no bytes either way for this long is closed, within an eighth of
   * it (at most 5 s) later: one sweep checks every tunnel. Default 600 s.
   */
  tunnelIdleTimeoutMs?: number;
  /** On close(), how long in-flight requests may take to finish before everything is cut. Default 10 s. */
  shutdownGraceMs?: number;
  /** Longest request-target accepted; longer gets 414. Default 8 KiB. */
  maxRequestTargetBytes?: number;
  /** Largest header section (field lines, not the request line) accepted; larger gets 431. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Most header fields accepted in one request; more gets 431. Default 128. */
  maxHeaderCount?: number;
  /** Client connections held at once; past it a new one gets 503 with Retry-After and is closed. Default 10000. */
  maxConnections?: number;
  /**
   * Client connections held at once from one IP address; past it, 503 as above. Default 10000 (no tighter than the
   * total): a proxy on loopback sees every client as 127.0.0.1. Lower it when serving other machines.
   */
  maxConnectionsPerClient?: number;
  /** CONNECT tunnels and upgraded connections open at once; past it a new one gets 503. Default 10000. */
  maxTunnels?: number;
  /**
   * Let the kernel move bytes nothing needs to see (splice(2), native/kernel_splice.c) instead of copying them
   * through JavaScript: CONNECT tunnels and upgraded connections between two plain TCP sockets that no addon taps
   * (nothing intercepted, archived or audited byte by byte), and the rest of a large untapped plain-HTTP response
   * body of known length. Everything else is copied in JavaScript as before, and so is everything where the native
   * module was not built. Default true.
   */
  kernelSplice?: boolean;
  /**
   * Upstream proxies to send traffic through: `http://`, `https://` (TLS to the proxy), `socks5://` (names resolved
   * here) and `socks5h://` (names resolved by the proxy), with optional `user:pass@`. Objects add a weight and a
   * group for route rules. Default: none, everything goes direct.
   */
  upstreams?: Array<string | UpstreamSpec>;
  /**
   * Take the upstream from these environment variables instead (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY; see
   * config/env-proxy.ts for the exact rules). The CLI's `--upstream env` passes process.env.
   */
  upstreamEnv?: Record<string, string | undefined>;
  /** How a group's upstreams are ordered per request. Default "round-robin". */
  strategy?: StrategyName;
  /** How long a sticky strategy keeps a key on one upstream after its last use. Default 10 min. */
  stickyTtlMs?: number;
  /** First match wins: host patterns or CIDRs to an upstream group or "direct". Unmatched traffic uses group "default". */
  routes?: RouteRuleSpec[];
  /** Local addresses direct connections rotate through (multi-homed hosts). Default: the system's choice. */
  bind?: string[];
  /**
   * Begin every connection to an upstream proxy with a PROXY protocol header (v1 text or v2 binary) naming the
   * client, for upstreams that log or police by client address. Such connections serve one client connection
   * each. Default: off.
   */
  upstreamProxyProtocol?: 'v1' | 'v2';
  /** Most routes tried for one request or tunnel before the client gets the last failure. Default 3. */
  upstreamAttempts?: number;
  /** Intercept HTTPS (terminate TLS with certificates minted by a local CA). Off unless given. */
  mitm?: MitmOptions;
  /** Extra trust anchors (PEM) for origins' and upstreams' TLS, on top of the system store. */
  caBundle?: string[];
  /** Skip verification of origins' TLS certificates. For tests only; logged loudly at start. */
  insecureUpstreamTls?: boolean;
  /**
   * How names of direct destinations are resolved, in `dns.lookup`'s shape (a custom DNS, a test's resolver).
   * Every address it answers goes through the destination checks. Default: dns.lookup.
   */
  resolver?: Resolver;
}

export interface MitmOptions {
  /** Directory with getaway-ca.pem and getaway-ca-key.pem (`getaway ca init`). Default: the per-user CA dir. */
  caDir?: string;
  /** A CA given as PEM text instead of a directory. */
  ca?: { certPem: string; keyPem: string };
  /** Host patterns to intercept (default: all); see docs/upstreams.md for the pattern syntax. */
  hosts?: string[];
  /** Host patterns never to intercept (pinned apps, banking, …). */
  excludeHosts?: string[];
  /** Wait this long for a client's first bytes before tunnelling untouched (server-first protocols). Default 1000. */
  peekTimeoutMs?: number;
  /**
   * Before minting for a host, connect to it once and copy the names of its own certificate into the leaf
   * (mitmproxy's upstream_cert): clients that check a name other than the SNI then still accept it. Costs one
   * extra connection per host (remembered). Default false.
   */
  upstreamCert?: boolean;
}

export interface TransparentOptions {
  /** Address to listen on; TPROXY needs one its rules name (often 0.0.0.0 or ::). Default "127.0.0.1". */
  host?: string;
  port: number;
  /** "tproxy" (the socket's local address is the destination) or "redirect" (SO_ORIGINAL_DST). Default "redirect". */
  mode?: TransparentMode;
}

export interface ResolvedProxyOptions extends CoreOptions, AccessOptions {
  explicit: boolean;
  transparent: { host: string; port: number; mode: TransparentMode } | undefined;
  addons: Addon[];
  listeners: Listener[];
  logger: Logger | undefined;
  upstreamAttempts: number;
  stickyTtlMs: number;
  upstreams: Array<string | UpstreamSpec>;
  upstreamEnv: Record<string, string | undefined> | undefined;
  strategy: StrategyName;
  routes: RouteRuleSpec[];
  bind: string[];
  mitm: MitmOptions | undefined;
  caBundle: string[];
  insecureUpstreamTls: boolean;
  upstreamProxyProtocol: 'v1' | 'v2' | undefined;
  resolver: Resolver | undefined;
}

export const DEFAULT_OPTIONS = {
  host: '127.0.0.1',
  port: 8080,
  connectTimeoutMs: 10_000,
  requestHeadersTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  responseTimeoutMs: 300_000,
  requestBodyIdleTimeoutMs: 60_000,
  tunnelIdleTimeoutMs: 600_000,
  shutdownGraceMs: 10_000,
  maxRequestTargetBytes: 8 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 128,
  maxConnections: 10_000,
  maxConnectionsPerClient: 10_000,
  maxTunnels: 10_000,
  upstreamAttempts: 3,
  stickyTtlMs: 600_000,
} as const;

export const DURATION_KEYS = [
  'connectTimeoutMs',
  'requestHeadersTimeoutMs',
  'idleTimeoutMs',
  'responseTimeoutMs',
  'requestBodyIdleTimeoutMs',
  'tunnelIdleTimeoutMs',
  'shutdownGraceMs',
  'stickyTtlMs',
] as const;

export const LIMIT_KEYS = [
  'maxRequestTargetBytes',
  'maxHeaderBytes',
  'maxHeaderCount',
  'maxConnections',
  'maxConnectionsPerClient',
  'maxTunnels',
  'upstreamAttempts',
] as const;

const ROUTING_KEYS = ['upstreams', 'upstreamEnv', 'strategy', 'routes', 'bind', 'upstreamProxyProtocol'] as const;
const TLS_KEYS = ['mitm', 'caBundle', 'insecureUpstreamTls'] as const;
const CODE_KEYS = ['resolver'] as const;
const COPY_KEYS = ['kernelSplice'] as const;

const KNOWN_KEYS = new Set<string>(['host', 'port', 'explicit', 'transparent', 'addons', 'listeners', 'logger', ...DURATION_KEYS, ...LIMIT_KEYS, ...ROUTING_KEYS, ...TLS_KEYS, ...ACCESS_KEYS, ...CODE_KEYS, ...COPY_KEYS]);

export function checkTls(input: ProxyOptions, source: string): string[] {
  const problems: string[] = [];
  const { mitm } = input;
  if (mitm !== undefined) {
    if (typeof mitm !== 'object' || mitm === null) problems.push(`${source}.mitm: expected an object, got ${describe(mitm)}`);
    else {
      for (const key of ['hosts', 'excludeHosts'] as const) {
        const patterns = mitm[key];
        if (patterns === undefined) continue;
        if (!Array.isArray(patterns)) problems.push(`${source}.mitm.${key}: expected an array of host patterns, got ${describe(patterns)}`);
        else {
          for (const pattern of patterns) {
            try {
              parseHostPattern(String(pattern));
            } catch (err) {
              problems.push(`${source}.mitm.${key}: ${(err as Error).message}`);
            }
          }
        }
      }
      const peek = mitm.peekTimeoutMs;
      if (peek !== undefined && (!Number.isInteger(peek) || peek <= 0)) problems.push(`${source}.mitm.peekTimeoutMs: expected a positive integer number of milliseconds, got ${describe(peek)}`);
      if (mitm.ca !== undefined && (typeof mitm.ca?.certPem !== 'string' || typeof mitm.ca?.keyPem !== 'string')) {
        problems.push(`${source}.mitm.ca: expected { certPem, keyPem } as PEM strings`);
      }
    }
  }
  if (input.caBundle !== undefined && (!Array.isArray(input.caBundle) || input.caBundle.some((pem) => typeof pem !== 'string' || !pem.includes('BEGIN CERTIFICATE')))) {
    problems.push(`${source}.caBundle: expected an array of PEM certificates`);
  }
  if (input.insecureUpstreamTls !== undefined && typeof input.insecureUpstreamTls !== 'boolean') {
    problems.push(`${source}.insecureUpstreamTls: expected true or false, got ${describe(input.insecureUpstreamTls)}`);
  }
  return problems;
}

/** Checks upstreams, strategy, routes and bind; returns the problems found. */
export function checkRouting(input: ProxyOptions, source: string): string[] {
  const problems: string[] = [];
  const groups = new Set<string>();
  const upstreams = input.upstreams ?? [];
  if (!Array.isArray(upstreams)) problems.push(`${source}.upstreams: expected an array of proxy URLs, got ${describe(upstreams)}`);
  else {
    upstreams.forEach((spec, i) => {
      try {
        groups.add(parseUpstreamProxy(spec).group);
      } catch (err) {
        problems.push(`${source}.upstreams[${i}]: ${(err as Error).message}`);
      }
    });
  }
  if (input.upstreamEnv !== undefined && (typeof input.upstreamEnv !== 'object' || input.upstreamEnv === null)) {
    problems.push(`${source}.upstreamEnv: expected an environment object, got ${describe(input.upstreamEnv)}`);
  } else if (input.upstreamEnv !== undefined) {
    const env = readEnvProxy(input.upstreamEnv);
    const checks = [{ variable: env.httpProxyVariable, url: env.httpProxy }];
    if (env.httpsProxyVariable !== env.httpProxyVariable) checks.push({ variable: env.httpsProxyVariable, url: env.httpsProxy });
    for (const { variable, url } of checks) {
      if (url === undefined) continue;
      try {
        parseUpstreamProxy(url);
      } catch (err) {
        problems.push(`${source}.upstreamEnv: ${variable}: ${(err as Error).message}`);
      }
    }
  }
  if (input.upstreamEnv !== undefined && Array.isArray(upstreams) && upstreams.length > 0) {
    problems.push(`${source}.upstreamEnv: use either upstreams or upstreamEnv (the environment), not both`);
  }
  if (input.strategy !== undefined && !(STRATEGY_NAMES as readonly string[]).includes(input.strategy)) {
    problems.push(`${source}.strategy: expected one of ${STRATEGY_NAMES.join(', ')}, got ${describe(input.strategy)}`);
  }
  const routes = input.routes ?? [];
  if (!Array.isArray(routes)) problems.push(`${source}.routes: expected an array of { match, via }, got ${describe(routes)}`);
  else {
    routes.forEach((rule, i) => {
      if (typeof rule !== 'object' || rule === null) {
        problems.push(`${source}.routes[${i}]: expected { match, via }, got ${describe(rule)}`);
        return;
      }
      const patterns = Array.isArray(rule.match) ? rule.match : [rule.match];
      for (const pattern of patterns) {
        try {
          parseHostPattern(String(pattern));
        } catch (err) {
          problems.push(`${source}.routes[${i}].match: ${(err as Error).message}`);
        }
      }
      if (rule.via !== 'direct' && !groups.has(rule.via)) {
        problems.push(`${source}.routes[${i}].via: expected "direct" or an upstream group (${[...groups].join(', ') || 'none configured'}), got ${describe(rule.via)}`);
      }
    });
  }
  const bind = input.bind ?? [];
  if (!Array.isArray(bind)) problems.push(`${source}.bind: expected an array of local IP addresses, got ${describe(bind)}`);
  else bind.forEach((address, i) => isIP(String(address)) === 0 && problems.push(`${source}.bind[${i}]: expected a local IP address, got ${describe(address)}`));
  return problems;
}


function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

function checkTransparent(input: unknown, source: string, problems: string[]): ResolvedProxyOptions['transparent'] {
  if (input === undefined) return undefined;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problems.push(`${source}.transparent: expected { host, port, mode }, got ${describe(input)}`);
    return undefined;
  }
  const { host = '127.0.0.1', port, mode = 'redirect', ...rest } = input as Record<string, unknown>;
  for (const key of Object.keys(rest)) problems.push(`${source}.transparent.${key}: unknown option (known: host, port, mode)`);
  if (typeof host !== 'string' || isIP(host) === 0) problems.push(`${source}.transparent.host: expected an IP address to listen on, got ${describe(host)}`);
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) {
    problems.push(`${source}.transparent.port: expected an integer from 0 to 65535, got ${describe(port)}`);
  }
  if (mode !== 'tproxy' && mode !== 'redirect') problems.push(`${source}.transparent.mode: expected "tproxy" or "redirect", got ${describe(mode)}`);
  return { host: host as string, port: port as number, mode: mode as TransparentMode };
}

/** Checks every key and reports every problem at once. `source` prefixes key names in messages ("config.yaml: "). */
export function resolveProxyOptions(input: ProxyOptions = {}, source = 'options'): ResolvedProxyOptions {
  const problems: string[] = [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new OptionsError([`${source}: expected an object, got ${describe(input)}`]);
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.has(key)) problems.push(`${source}.${key}: unknown option (known: ${[...KNOWN_KEYS].join(', ')})`);
  }

  const host = input.host ?? DEFAULT_OPTIONS.host;
  if (typeof host !== 'string' || host === '') problems.push(`${source}.host: expected a host name or IP address, got ${describe(host)}`);

  const port = input.port ?? DEFAULT_OPTIONS.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    problems.push(`${source}.port: expected an integer from 0 to 65535, got ${describe(port)}`);
  }

  const explicit = input.explicit ?? true;
  if (typeof explicit !== 'boolean') problems.push(`${source}.explicit: expected true or false, got ${describe(explicit)}`);
  const transparent = checkTransparent(input.transparent, source, problems);

  const addons = input.addons ?? [];
  if (!Array.isArray(addons)) {
    problems.push(`${source}.addons: expected an array of addons, got ${describe(addons)}`);
  } else {
    addons.forEach((addon: unknown, i) => {
      if (typeof addon !== 'object' || addon === null || typeof (addon as { name?: unknown }).name !== 'string') {
        problems.push(`${source}.addons[${i}]: expected an object with a string "name", got ${describe(addon)}`);
      }
    });
  }

  const listeners = input.listeners ?? [];
  if (!Array.isArray(listeners) || listeners.some((l: unknown) => typeof l !== 'object' || l === null || typeof (l as Listener).listen !== 'function')) {
    problems.push(`${source}.listeners: expected an array of listeners (objects with listen() and close())`);
  }

  const logger = input.logger;
  if (logger !== undefined && (typeof logger !== 'object' || typeof logger.child !== 'function')) {
    problems.push(`${source}.logger: expected a pino logger, got ${describe(logger)}`);
  }

  const durations = {} as Record<(typeof DURATION_KEYS)[number], number>;
  for (const key of DURATION_KEYS) {
    const value = input[key] ?? DEFAULT_OPTIONS[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      problems.push(`${source}.${key}: expected a positive integer number of milliseconds, got ${describe(value)}`);
    }
    durations[key] = value;
  }

  const limits = {} as Record<(typeof LIMIT_KEYS)[number], number>;
  for (const key of LIMIT_KEYS) {
    const value = input[key] ?? DEFAULT_OPTIONS[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      problems.push(`${source}.${key}: expected a positive integer, got ${describe(value)}`);
    }
    limits[key] = value;
  }

  problems.push(...checkRouting(input, source));
  problems.push(...checkTls(input, source));
  problems.push(...checkAccess(input, source));
  if (input.upstreamProxyProtocol !== undefined && input.upstreamProxyProtocol !== 'v1' && input.upstreamProxyProtocol !== 'v2') {
    problems.push(`${source}.upstreamProxyProtocol: expected "v1" or "v2", got ${describe(input.upstreamProxyProtocol)}`);
  }
  if (input.kernelSplice !== undefined && typeof input.kernelSplice !== 'boolean') problems.push(`${source}.kernelSplice: expected true or false, got ${describe(input.kernelSplice)}`);
  if (input.resolver !== undefined && typeof input.resolver !== 'function') problems.push(`${source}.resolver: expected a function shaped like dns.lookup`);

  if (explicit === false && transparent === undefined && Array.isArray(listeners) && listeners.length === 0) {
    problems.push(`${source}.explicit: false leaves nothing to listen on; give transparent or listeners`);
  }

  if (problems.length > 0) throw new OptionsError(problems);
  return {
    host,
    port,
    explicit,
    transparent,
    addons,
    listeners,
    logger,
    ...durations,
    ...limits,
    upstreams: input.upstreams ?? [],
    upstreamEnv: input.upstreamEnv,
    strategy: input.strategy ?? 'round-robin',
    routes: input.routes ?? [],
    bind: input.bind ?? [],
    mitm: input.mitm,
    caBundle: input.caBundle ?? [],
    insecureUpstreamTls: input.insecureUpstreamTls ?? false,
    kernelSplice: input.kernelSplice ?? true,
    allowClients: input.allowClients,
    connectPorts: input.connectPorts,
    allowPrivate: input.allowPrivate,
    allowDestinations: input.allowDestinations,
    auth: input.auth,
    acceptProxyProtocol: input.acceptProxyProtocol,
    accessRules: input.accessRules,
    rateLimits: input.rateLimits,
    resolver: input.resolver,
    upstreamProxyProtocol: input.upstreamProxyProtocol,
  };
}
