/**
 * Who may use the proxy and where to: the options, their checks, and the built-in addons they turn into
 * (docs/security.md). The defaults depend on exposure: a proxy on loopback serves this machine's own programs, which
 * could open any connection themselves; one on any other address serves the network, and is locked down.
 */
import { accessRules, checkAccessRules, type AccessRule } from '../addons/access-rules.js';
import { clientAllowList } from '../addons/client-allow-list.js';
import { checkRateLimits, rateLimits, type RateLimitOptions } from '../addons/rate-limits.js';
import { connectPorts, parsePortList } from '../addons/connect-ports.js';
import { destinationPolicy } from '../addons/destination-policy.js';
import { proxyAuth, type ProxyAuth, type ProxyAuthOptions } from '../addons/proxy-auth.js';
import { AddressRanges, isLoopbackHost } from '../core/addresses.js';
import type { Addon } from '../core/addon.js';
import { OptionsError } from './options-error.js';

export interface AccessOptions {
  /** Client addresses or CIDRs allowed to connect; others are closed before a byte is parsed. Default: everyone. */
  allowClients?: string[];
  /**
   * Ports CONNECT may reach: "443,8443", ranges ("8000-8999"), or "*". Default: 443 when listening beyond loopback
   * (squid's and tinyproxy's rule), any port on loopback.
   */
  connectPorts?: string | Array<number | string>;
  /**
   * Let clients reach loopback, RFC 1918, CGNAT, unique-local and unspecified addresses although getaway listens
   * beyond loopback. Link-local and cloud metadata stay refused (allow them one by one with allowDestinations).
   */
  allowPrivate?: boolean;
  /** Destination addresses or CIDRs allowed whatever the internal-address protection says. */
  allowDestinations?: string[];
  /** Basic proxy authentication: users given in clear, an htpasswd file, or both. Off unless given. */
  auth?: ProxyAuthOptions;
  /**
   * The explicit listener sits behind a load balancer that sends the PROXY protocol (v1 or v2) from these
   * addresses or CIDRs; every connection must start with a header, and connections from elsewhere are closed. Other
   * listeners get the same by wrapping them in ProxyProtocolListener.
   */
  acceptProxyProtocol?: { trusted: string[]; headerTimeoutMs?: number };
  /** Allow/deny rules, first match wins (addons/access-rules.ts, docs/security.md). Default: none. */
  accessRules?: AccessRule[];
  /** Request rates and concurrency per client address and per user: 429 / 503 past them. Default: none. */
  rateLimits?: RateLimitOptions;
}

export const ACCESS_KEYS = ['allowClients', 'connectPorts', 'allowPrivate', 'allowDestinations', 'auth', 'acceptProxyProtocol', 'accessRules', 'rateLimits'] as const;

export function checkAccess(input: AccessOptions, source: string): string[] {
  const problems: string[] = [];
  for (const key of ['allowClients', 'allowDestinations'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    if (!Array.isArray(value) || value.some((entry) => typeof entry !== 'string')) {
      problems.push(`${source}.${key}: expected an array of IP addresses or CIDR ranges`);
      continue;
    }
    try {
      new AddressRanges(value);
    } catch (err) {
      problems.push(`${source}.${key}: ${(err as Error).message}`);
    }
  }
  if (input.connectPorts !== undefined) {
    try {
      parsePortList(input.connectPorts);
    } catch (err) {
      problems.push(`${source}.connectPorts: ${(err as Error).message}`);
    }
  }
  if (input.allowPrivate !== undefined && typeof input.allowPrivate !== 'boolean') problems.push(`${source}.allowPrivate: expected true or false`);
  const front = input.acceptProxyProtocol;
  if (front !== undefined) {
    if (typeof front !== 'object' || front === null || !Array.isArray(front.trusted) || front.trusted.length === 0) {
      problems.push(`${source}.acceptProxyProtocol: expected { trusted: [balancer addresses or CIDRs] }`);
    } else {
      try {
        new AddressRanges(front.trusted);
      } catch (err) {
        problems.push(`${source}.acceptProxyProtocol.trusted: ${(err as Error).message}`);
      }
      const timeout = front.headerTimeoutMs;
      if (timeout !== undefined && (!Number.isInteger(timeout) || timeout <= 0)) problems.push(`${source}.acceptProxyProtocol.headerTimeoutMs: expected a positive integer`);
    }
  }
  if (input.rateLimits !== undefined) problems.push(...checkRateLimits(input.rateLimits, `${source}.rateLimits`));
  if (input.accessRules !== undefined) problems.push(...checkAccessRules(input.accessRules, `${source}.accessRules`));
  const { auth } = input;
  if (auth !== undefined) {
    if (typeof auth !== 'object' || auth === null) problems.push(`${source}.auth: expected { users, file, realm }`);
    else {
      if (auth.users !== undefined && (!Array.isArray(auth.users) || auth.users.some((pair) => typeof pair !== 'string' || pair.indexOf(':') <= 0))) {
        problems.push(`${source}.auth.users: expected an array of "user:password" strings`);
      }
      if (auth.file !== undefined && typeof auth.file !== 'string') problems.push(`${source}.auth.file: expected the path of an htpasswd file`);
      if ((auth.users === undefined || auth.users.length === 0) && auth.file === undefined) problems.push(`${source}.auth: give users, a file, or both`);
    }
  }
  return problems;
}

/**
 * The refusal `getaway serve` starts with when it would be an open proxy: listening beyond loopback with neither
 * authentication nor a client allow-list. Undefined when the settings are safe.
 */
export function openProxyProblem(host: string, access: AccessOptions): string | undefined {
  if (isLoopbackHost(host) || access.auth !== undefined || (access.allowClients?.length ?? 0) > 0) return undefined;
  return (
    `listening on ${host} would make this an open proxy for anyone who can reach it. ` +
    'Add --allow-clients CIDR (repeatable) for the networks that may use it, or --auth user:pass / --auth-file FILE, ' +
    'or listen on 127.0.0.1'
  );
}

export interface AccessAddons {
  /** Run ahead of the user's addons, in order: admission, authentication, rules, limits, CONNECT ports, destinations. */
  addons: Addon[];
  /** Set when authentication is on: `proxy.reload()` re-reads its htpasswd file. */
  auth: ProxyAuth | undefined;
}

/** The built-in addons the access options ask for. The options were checked by checkAccess. */
export function accessAddons(host: string, access: AccessOptions): AccessAddons {
  const exposed = !isLoopbackHost(host);
  const addons: Addon[] = [];
  if (access.allowClients !== undefined && access.allowClients.length > 0) addons.push(clientAllowList(access.allowClients));
  const auth = access.auth === undefined ? undefined : loadAuth(access.auth);
  if (auth !== undefined) addons.push(auth);
  if (access.accessRules !== undefined && access.accessRules.length > 0) addons.push(accessRules(access.accessRules));
  if (access.rateLimits !== undefined) addons.push(rateLimits(access.rateLimits));
  const ports = parsePortList(access.connectPorts ?? (exposed ? '443' : '*'));
  if (!ports.all) addons.push(connectPorts(ports));
  addons.push(destinationPolicy({ refusePrivate: exposed && access.allowPrivate !== true, allow: access.allowDestinations ?? [] }));
  return { addons, auth };
}

/** proxyAuth reads its htpasswd file at once: a file that is missing or does not parse stops the start (exit 2). */
function loadAuth(options: ProxyAuthOptions): ProxyAuth {
  try {
    return proxyAuth(options);
  } catch (err) {
    throw new OptionsError([`auth.file: ${(err as Error).message}`]);
  }
}
