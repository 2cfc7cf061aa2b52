/**
 * HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY, read the way curl and Go's httpproxy do. Where they
 * disagree we pick one and say so here:
 *  - Variable precedence: lower case first (curl; Go takes upper case first). `HTTP_PROXY` in upper case is
 *    ignored when REQUEST_METHOD is set, i.e. inside a CGI script where a client controls it (httpoxy; Go and curl
 *    both guard against it).
 *  - ALL_PROXY is the fallback for both schemes (curl; Go has no ALL_PROXY).
 *  - NO_PROXY: "*", domains with suffix matching, a leading dot or "*." meaning the domain and its subdomains
 *    (curl), "*." meaning only the subdomains (both), IP addresses, CIDR ranges (both), ":port" (Go). A
 *    bracketed IPv6 address without a port ("[2001:db8::1]") matches nothing in either tool (Go reads it as a
 *    name with brackets), so it matches nothing here.
 *  - Loopback addresses and the exact name "localhost" never use a proxy (Go); "foo.localhost" does (both).
 * Pure: the environment is passed in.
 */
import { isIP } from 'node:net';
import { parseHostPattern, type HostPattern } from '../core/host-pattern.js';

export interface EnvProxySettings {
  /** For plain http:// requests (and ws://). */
  httpProxy: string | undefined;
  /** For https:// and every other CONNECT tunnel. */
  httpsProxy: string | undefined;
  noProxy: HostPattern[];
  /** The variable each proxy URL came from (for messages that name it). */
  httpProxyVariable: string | undefined;
  httpsProxyVariable: string | undefined;
}

function first(env: Readonly<Record<string, string | undefined>>, names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

export function readEnvProxy(env: Readonly<Record<string, string | undefined>>): EnvProxySettings {
  const cgi = (env['REQUEST_METHOD'] ?? '') !== '';
  const all = first(env, ['all_proxy', 'ALL_PROXY']);
  const httpProxy = first(env, cgi ? ['http_proxy'] : ['http_proxy', 'HTTP_PROXY']) ?? all;
  const httpsProxy = first(env, ['https_proxy', 'HTTPS_PROXY']) ?? all;
  const noProxyText = first(env, ['no_proxy', 'NO_PROXY'])?.value ?? '';
  const noProxy: HostPattern[] = [];
  for (const entry of noProxyText.split(/[,\s]+/)) {
    if (entry === '' || /^\[[^\]]*\]$/.test(entry)) continue;
    try {
      noProxy.push(parseHostPattern(entry));
    } catch {
      // An entry neither tool could use is ignored by both; we do the same rather than refuse to start.
    }
  }
  return { httpProxy: httpProxy?.value, httpsProxy: httpsProxy?.value, noProxy, httpProxyVariable: httpProxy?.name, httpsProxyVariable: httpsProxy?.name };
}

function isLoopback(host: string): boolean {
  const name = host.toLowerCase();
  if (name === 'localhost') return true;
  const family = isIP(name);
  return (family === 4 && name.startsWith('127.')) || (family === 6 && name === '::1');
}

/** The proxy URL to use for a request, or undefined for a direct connection. */
export function envProxyFor(settings: EnvProxySettings, scheme: 'http' | 'https', host: string, port: number): string | undefined {
  const proxy = scheme === 'http' ? settings.httpProxy : settings.httpsProxy;
  if (proxy === undefined || isLoopback(host)) return undefined;
  return settings.noProxy.some((pattern) => pattern.matches(host, port)) ? undefined : proxy;
}
