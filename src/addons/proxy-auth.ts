import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Addon } from '../core/addon.js';
import { ProxyError } from '../core/errors.js';
import type { Flow } from '../core/flow.js';
import { parseHtpasswd, plainEntry, type PasswordEntry } from './htpasswd.js';

export interface ProxyAuthOptions {
  /** `user:password` pairs, the password in clear (the CLI's `--auth`). */
  users?: readonly string[];
  /** An htpasswd file (bcrypt, SHA-1 or Apache MD5 entries); `reload()` reads it again (getaway serve: on SIGHUP). */
  file?: string;
  /** The realm in `Proxy-Authenticate`. Default "getaway". */
  realm?: string;
  /** Failed attempts one client address may make per minute; past it, 429 until the minute is over. Default 10. */
  maxFailuresPerMinute?: number;
}

export interface ProxyAuth extends Addon {
  /** Reads the htpasswd file again; on a problem the users already loaded stay, and the promise rejects. */
  reload(): Promise<void>;
}

const FAILURE_WINDOW_MS = 60_000;
/** Verified credentials remembered, so a bcrypt hash is checked once per client session, not once per request. */
const MAX_VERIFIED = 10_000;
/** Client addresses whose failures are counted; the oldest go first past it. */
const MAX_TRACKED_CLIENTS = 10_000;

/**
 * Basic proxy authentication (RFC 9110 §11.7.1, RFC 7617): every request and CONNECT must carry
 * `Proxy-Authorization: Basic …` for a known user, or gets 407 with `Proxy-Authenticate`. The user goes on the flow
 * (`flow.user`); requests inside an intercepted tunnel inherit it from the CONNECT. The header itself is hop-by-hop:
 * it never reaches an origin or an upstream (which get their own credentials), and nothing logs it.
 *
 * @example
 * createProxy({ host: '0.0.0.0', addons: [proxyAuth({ users: ['alice:s3cret'] })] });
 */
export function proxyAuth(options: ProxyAuthOptions): ProxyAuth {
  const realm = options.realm ?? 'getaway';
  const maxFailures = options.maxFailuresPerMinute ?? 10;
  const fixed = new Map<string, PasswordEntry>();
  for (const pair of options.users ?? []) {
    const colon = pair.indexOf(':');
    if (colon <= 0) throw new Error('auth users: expected "user:password"');
    fixed.set(pair.slice(0, colon), plainEntry(pair.slice(0, colon), pair.slice(colon + 1)));
  }
  const { file } = options;
  let users = merge(fixed, file === undefined ? undefined : parseHtpasswd(readFileSync(file, 'utf8'), file));
  // Header value → user. Cleared on reload, so a removed user or changed password stops working at once.
  const verified = new Map<string, string>();
  const failures = new Map<string, { count: number; windowStart: number }>();
  const challenge = ['Proxy-Authenticate', `Basic realm="${realm.replace(/["\\]/g, '')}", charset="UTF-8"`];

  const refuse = (message: string): ProxyError =>
    new ProxyError('http_request_denied', message, { status: 407, responseHeaders: challenge });

  function tooManyFailures(address: string, now: number): number | undefined {
    const record = failures.get(address);
    if (record === undefined || now - record.windowStart >= FAILURE_WINDOW_MS) return undefined;
    return record.count >= maxFailures ? record.windowStart + FAILURE_WINDOW_MS - now : undefined;
  }

  function countFailure(address: string, now: number): void {
    const record = failures.get(address);
    if (record === undefined || now - record.windowStart >= FAILURE_WINDOW_MS) {
      failures.delete(address);
      failures.set(address, { count: 1, windowStart: now });
      if (failures.size > MAX_TRACKED_CLIENTS) failures.delete(failures.keys().next().value!);
    } else record.count++;
  }

  /** Synchronous for a client already verified (no promise per request); the first check may await bcrypt. */
  function authenticate(flow: Flow): void | Promise<void> {
    if (flow.kind === 'http' && flow.tunnel !== undefined) return; // authenticated at its CONNECT
    // Redirected to a transparent listener: the client does not know of a proxy and cannot answer 407; who may be
    // redirected is the network's rules and --allow-clients.
    if (flow.client.destination !== undefined) return;
    const header = flow.clientRequest.headers.get('proxy-authorization');
    if (header === undefined) throw refuse('proxy authentication required');
    const known = verified.get(header);
    if (known !== undefined) {
      flow.user = known;
      return;
    }
    return verify(flow, header);
  }

  async function verify(flow: Flow, header: string): Promise<void> {
    const address = flow.client.remoteAddress;
    const now = Date.now();
    const wait = tooManyFailures(address, now);
    if (wait !== undefined) {
      throw new ProxyError('http_request_denied', `too many failed proxy authentications from ${address}`, { status: 429, retryAfterMs: wait });
    }
    const credentials = parseBasic(header);
    const entry = credentials === undefined ? undefined : users.get(credentials.user);
    // An unknown user costs a comparison too, so timing does not tell which user names exist.
    const ok = entry === undefined ? (await DUMMY.verify(credentials?.password ?? ''), false) : await entry.verify(credentials!.password);
    if (!ok) {
      countFailure(address, now);
      throw refuse(credentials === undefined ? 'Proxy-Authorization is not Basic user:password' : 'wrong user name or password');
    }
    verified.set(header, entry!.user);
    if (verified.size > MAX_VERIFIED) verified.delete(verified.keys().next().value!);
    flow.user = entry!.user;
  }

  return {
    name: 'proxy-auth',
    requestHeaders: authenticate,
    connect: authenticate,
    async reload() {
      if (file === undefined) return;
      users = merge(fixed, parseHtpasswd(await readFile(file, 'utf8'), file));
      verified.clear();
    },
  };
}

const DUMMY = plainEntry('', 'not a password anyone has');

function merge(fixed: Map<string, PasswordEntry>, fromFile: Map<string, PasswordEntry> | undefined): Map<string, PasswordEntry> {
  return fromFile === undefined ? fixed : new Map([...fromFile, ...fixed]);
}

/** `Basic <base64(user:password)>` (the scheme is case-insensitive; the password may contain colons). */
function parseBasic(header: string): { user: string; password: string } | undefined {
  const match = /^basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(header);
  if (match === null) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon <= 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
