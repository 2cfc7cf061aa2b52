/**
 * An upstream proxy as configured: parsed once from its URL (`http://user:pass@host:3128`), pure.
 */
import { isIP } from 'node:net';

export type UpstreamProtocol = 'http' | 'https' | 'socks5' | 'socks5h';

export interface UpstreamProxy {
  /** The URL without credentials: how logs, flows and routes name it. */
  readonly id: string;
  readonly protocol: UpstreamProtocol;
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** Relative share for weighted strategies; 1 unless configured. */
  readonly weight: number;
  /** Route rules send traffic to a group by name; "default" unless configured. */
  readonly group: string;
}

const DEFAULT_PORTS: Record<UpstreamProtocol, number> = { http: 80, https: 443, socks5: 1080, socks5h: 1080 };

export interface UpstreamSpec {
  url: string;
  weight?: number;
  group?: string;
}

/**
 * A proxy URL as it may be shown (messages, logs, responses): credentials replaced by `***`. Works on text that
 * is not a valid URL too, since that is exactly the text an error message quotes.
 */
export function redactUserinfo(url: string): string {
  return url.replace(/^((?:[a-z][a-z0-9+.-]*:)?\/\/)?[^/?#\s]*@/i, (_match, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

/**
 * Parses an upstream URL; throws an Error whose message says what is wrong, for the config validator to report.
 * Messages quote the URL without its credentials.
 */
export function parseUpstreamProxy(spec: string | UpstreamSpec): UpstreamProxy {
  const { url, weight = 1, group = 'default' } = typeof spec === 'string' ? { url: spec } : spec;
  const shown = redactUserinfo(String(url));
  // A bare host:port means an HTTP proxy, as curl and Go's httpproxy read it.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch {
    throw new Error(`"${shown}" is not a URL (expected e.g. http://user:pass@proxy.example:3128)`);
  }
  const protocol = parsed.protocol.slice(0, -1).toLowerCase();
  if (protocol !== 'http' && protocol !== 'https' && protocol !== 'socks5' && protocol !== 'socks5h') {
    throw new Error(`"${shown}": unsupported upstream scheme "${protocol}" (http, https, socks5, socks5h)`);
  }
  if (parsed.hostname === '') throw new Error(`"${shown}": no host`);
  if ((parsed.pathname !== '' && parsed.pathname !== '/') || parsed.search !== '' || parsed.hash !== '') {
    throw new Error(`"${shown}": an upstream proxy URL has no path, query or fragment`);
  }
  if (!Number.isInteger(weight) || weight < 1) throw new Error(`"${shown}": weight must be a positive integer, got ${String(weight)}`);
  if (typeof group !== 'string' || group === '' || group === 'direct') throw new Error(`"${shown}": group must be a name other than "direct"`);
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const port = parsed.port === '' ? DEFAULT_PORTS[protocol] : Number(parsed.port);
  const shownHost = isIP(host) === 6 ? `[${host}]` : host;
  return {
    id: `${protocol}://${shownHost}:${port}`,
    protocol,
    host,
    port,
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    weight,
    group,
  };
}

/** `Proxy-Authorization: Basic …` for an HTTP(S) upstream with credentials. */
export function proxyAuthorization(upstream: UpstreamProxy): string | undefined {
  if (upstream.username === undefined) return undefined;
  return `Basic ${Buffer.from(`${upstream.username}:${upstream.password ?? ''}`).toString('base64')}`;
}

/**
 * The user name a client presented in `Proxy-Authorization: Basic`, used only as an affinity key for sticky-user
 * (rotating-proxy services key sessions on it). Verifying it is the auth addon's job, not this function's.
 */
export function proxyUserOf(headers: { get(name: string): string | undefined }): string | undefined {
  const value = headers.get('proxy-authorization');
  if (value === undefined || !/^basic /i.test(value)) return undefined;
  const decoded = Buffer.from(value.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon <= 0 ? undefined : decoded.slice(0, colon);
}
