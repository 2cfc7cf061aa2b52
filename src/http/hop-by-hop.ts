/**
 * Hop-by-hop header handling (RFC 9110 §7.6.1), the same list Go's httputil.ReverseProxy keeps. Pure.
 */
import type { HeaderList } from '../core/header-list.js';

/**
 * Always connection-specific. Proxy-Connection is not standard but still sent by libcurl and some browsers.
 * `Proxy` is not hop-by-hop, but a CGI origin turns it into HTTP_PROXY (httpoxy, CVE-2016-5385), so it never leaves.
 */
const ALWAYS_REMOVED: ReadonlySet<string> = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy',
]);

const isAlwaysRemoved = (name: string): boolean => ALWAYS_REMOVED.has(name);

/**
 * Fields a Connection token must never remove, because their removal changes what the message is rather than how
 * this hop carries it: Content-Length frames the body (without it a body the client sent would reach a pooled
 * origin connection as the next request, which no hook saw), and Host names the target. Transfer-Encoding is
 * removed anyway and re-derived from what llhttp parsed. Go's ReverseProxy is safe here only because its client
 * frames requests from ContentLength, not from the header; we relay raw headers, so the rule has to live here.
 */
const NOT_NAMEABLE = new Set(['content-length', 'host']);

/**
 * Removes the fixed list and every field named by a Connection token, in one pass over the fields (this runs
 * twice per request). `TE: trailers` survives, because it is the client saying it accepts trailers, which the
 * proxy relays end to end (golang/go#21096).
 */
export function stripHopByHopHeaders(headers: HeaderList): void {
  const wantsTrailers = headers.has('te') && headers.getTokens('te').some((token) => token === 'trailers' || token.startsWith('trailers;'));
  const named = headers.has('connection') ? headers.getTokens('connection').filter((token) => !NOT_NAMEABLE.has(token)) : [];
  headers.deleteWhere(named.length === 0 ? isAlwaysRemoved : (name) => ALWAYS_REMOVED.has(name) || named.includes(name));
  if (wantsTrailers) headers.append('TE', 'trailers');
}

/** The protocols a request asked to upgrade to (`Upgrade: websocket`), lower-cased; empty when it did not ask. */
export function requestedUpgrades(headers: HeaderList): string[] {
  if (!headers.getTokens('connection').includes('upgrade')) return [];
  return headers.getTokens('upgrade').map((protocol) => protocol.split('/')[0]!);
}

/**
 * True when a Via entry names `pseudonym` as its received-by: the message already passed through this proxy, so
 * forwarding it again is a loop (RFC 9110 §7.6.3 names loop detection as a purpose of Via). Address checks catch
 * loops straight back to the listener; this catches those through other proxies (A → B → A).
 */
export function viaNames(headers: HeaderList, pseudonym: string): boolean {
  if (!headers.has('via')) return false;
  const wanted = pseudonym.toLowerCase();
  return headers.getTokens('via').some((entry) => entry.split(/[ \t]+/)[1] === wanted);
}

/**
 * Appends this proxy to Via (RFC 9110 §7.6.3). A new field line is equivalent to a comma-joined value, and
 * appending one keeps the earlier entries byte for byte.
 */
export function appendVia(headers: HeaderList, httpVersion: string, pseudonym: string): void {
  headers.append('Via', `${httpVersion} ${pseudonym}`);
}
