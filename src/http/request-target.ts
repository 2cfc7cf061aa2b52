/**
 * Parses the request-target of a request sent to a forward proxy (RFC 9112 §3.2). Pure: strings in, values out.
 *   absolute-form   GET http://example.test:8080/path?q HTTP/1.1   → forwarded
 *   authority-form  CONNECT example.test:443 HTTP/1.1             → tunnelled
 *   origin-form     GET /path HTTP/1.1                            → aimed at the proxy itself
 */
import { isIP } from 'node:net';

import type { TargetScheme } from '../core/flow.js';

export type { TargetScheme };

export interface AbsoluteTarget {
  form: 'absolute';
  scheme: TargetScheme;
  /** Lower-cased host name, dotted IPv4, or IPv6 without brackets. */
  host: string;
  port: number;
  /** Path and query, never empty ("/" when the URI had none). */
  path: string;
}

export interface AuthorityTarget {
  form: 'authority';
  host: string;
  port: number;
}

export interface OriginTarget {
  form: 'origin';
  path: string;
}

export type TargetParseResult<T> = { ok: true; target: T } | { ok: false; reason: string };

const DEFAULT_PORTS: Record<TargetScheme, number> = { http: 80, https: 443 };

/** reg-name characters of RFC 3986 §3.2.2 (unreserved / pct-encoded / sub-delims). */
const REG_NAME = /^[a-z0-9\-._~!$&'()*+,;=%]+$/i;

interface Authority {
  host: string;
  port: number | undefined;
}

function parseAuthority(authority: string): Authority | string {
  if (authority === '') return 'empty authority';
  if (authority.includes('@')) return 'userinfo is not allowed in a request target (RFC 9110 §4.2.4)';
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close === -1) return 'unterminated IPv6 literal';
    host = authority.slice(1, close);
    if (isIP(host) !== 6) return `invalid IPv6 literal "${host}"`;
    const rest = authority.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return 'unexpected characters after IPv6 literal';
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon === -1) {
      host = authority;
    } else {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    }
    if (host === '') return 'empty host';
    if (!REG_NAME.test(host)) return `invalid host "${host}"`;
    host = host.toLowerCase();
  }
  if (portText === undefined) return { host, port: undefined };
  if (!/^[0-9]{1,5}$/.test(portText)) return `invalid port "${portText}"`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port ${port} is out of range`;
  return { host, port };
}

/** CONNECT host:port. The port is mandatory (RFC 9110 §9.3.6). */
export function parseAuthorityForm(target: string): TargetParseResult<AuthorityTarget> {
  const authority = parseAuthority(target);
  if (typeof authority === 'string') return { ok: false, reason: authority };
  if (authority.port === undefined) return { ok: false, reason: 'CONNECT target needs a port' };
  return { ok: true, target: { form: 'authority', host: authority.host, port: authority.port } };
}

/** A Host field value: host with an optional port (RFC 9110 §7.2). */
export function parseHostField(value: string): TargetParseResult<{ host: string; port: number | undefined }> {
  const authority = parseAuthority(value.trim());
  if (typeof authority === 'string') return { ok: false, reason: authority };
  return { ok: true, target: authority };
}

const ABSOLUTE = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^#]*)$/i;

/** A target of a request that is not CONNECT: absolute-form for a proxy request, origin-form otherwise. */
export function parseRequestTarget(target: string): TargetParseResult<AbsoluteTarget | OriginTarget> {
  if (target.startsWith('/')) return { ok: true, target: { form: 'origin', path: target } };
  if (target === '*') return { ok: false, reason: 'asterisk-form is only for OPTIONS to a server, not a proxy' };
  const match = ABSOLUTE.exec(target);
  if (match === null) return { ok: false, reason: 'request target is neither absolute-form nor origin-form' };
  const scheme = match[1]!.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return { ok: false, reason: `unsupported scheme "${scheme}"` };
  const authority = parseAuthority(match[2]!);
  if (typeof authority === 'string') return { ok: false, reason: authority };
  let path = match[3]!;
  if (path === '') path = '/';
  else if (path.startsWith('?')) path = `/${path}`;
  return {
    ok: true,
    target: { form: 'absolute', scheme, host: authority.host, port: authority.port ?? DEFAULT_PORTS[scheme], path },
  };
}

/** Whether `host` is an IPv6 literal (unbracketed). Only a name with a colon can be: isIP()'s regular expressions run for those alone. */
export function isIPv6(host: string): boolean {
  return host.includes(':') && isIP(host) === 6;
}

/** Whether `port` is the one `scheme` implies, left out of an authority. */
export function isDefaultPort(scheme: TargetScheme, port: number): boolean {
  return DEFAULT_PORTS[scheme] === port;
}

/** host[:port] as it belongs in a Host header: default port omitted, IPv6 bracketed. */
export function formatAuthority(host: string, port: number, scheme?: TargetScheme): string {
  const name = isIPv6(host) ? `[${host}]` : host;
  return scheme !== undefined && DEFAULT_PORTS[scheme] === port ? name : `${name}:${port}`;
}

export function formatAbsoluteUrl(target: { scheme: TargetScheme; host: string; port: number; path: string }): string {
  return `${target.scheme}://${formatAuthority(target.host, target.port, target.scheme)}${target.path}`;
}
