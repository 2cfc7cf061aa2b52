/**
 * The audit recorder: an addon that keeps, per host reached, what `getaway run` reports (requests and tunnels,
 * bytes each way, methods, status codes, first and last time, the URLs seen when they were visible) and the
 * requests the proxy refused. It reads only finished flows, like the flow log. Headers are never kept, so
 * Authorization, Cookie and Set-Cookie cannot reach a report; secrets in query strings are redacted (redactUrl).
 */
import { createHash } from 'node:crypto';
import type { Addon } from '../core/addon.js';
import type { Flow, HttpFlow } from '../core/flow.js';
import { recognizeDependency, type Dependency } from './dependency-urls.js';
import { formatAbsoluteUrl } from '../http/request-target.js';

export interface HostActivity {
  /** host:port as the client asked for it ([v6]:port for IPv6). */
  host: string;
  /** http, https (intercepted or tunnelled), or tunnel (CONNECT whose contents were not seen). */
  schemes: string[];
  requests: number;
  tunnels: number;
  bytesUp: number;
  bytesDown: number;
  methods: string[];
  /** Response status → count; "error:TYPE" (RFC 9209) for flows that failed. */
  statuses: Record<string, number>;
  first: string;
  last: string;
  /** Distinct URLs (redacted), up to URL_LIMIT per host; only for plain HTTP and intercepted HTTPS. */
  urls: string[];
  /** Requests whose URL was not listed because the list was full (repeats of one such URL count each time). */
  moreUrls: number;
}

export interface DeniedRequest {
  time: string;
  target: string;
  method: string;
  /** RFC 9209 error type: http_request_denied, destination_ip_prohibited, ... */
  reason: string;
  details: string;
}

/** A package the command downloaded, recognised from its URL, with the digest of the bytes that passed. */
export interface PulledDependency extends Dependency {
  /** Where it came from (redacted like every URL in the report). */
  url: string;
  /** Bytes of the response body as relayed (content coding kept: the file as the registry serves it). */
  size: number;
  sha256: string;
}

const URL_LIMIT = 1000;
/** Query parameters whose values are credentials often enough to redact by default. */
const SECRET_PARAMETER = /^(access[_-]?token|token|id[_-]?token|refresh[_-]?token|api[_-]?key|apikey|key|secret|client[_-]?secret|password|passwd|pwd|auth|authorization|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|code|session|sessionid|jwt)$/i;
const DENIED_TYPES = new Set(['http_request_denied', 'destination_ip_prohibited', 'proxy_loop_detected']);

/** The URL with user:password and secret-looking query values replaced by REDACTED. */
export function redactUrl(url: string): string {
  const queryAt = url.indexOf('?');
  let head = queryAt === -1 ? url : url.slice(0, queryAt);
  head = head.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1REDACTED@');
  if (queryAt === -1) return head;
  const query = url
    .slice(queryAt + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals === -1 ? pair : pair.slice(0, equals);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // a malformed escape: judge the name as written
      }
      return equals !== -1 && SECRET_PARAMETER.test(decoded) ? `${name}=REDACTED` : pair;
    })
    .join('&');
  return `${head}?${query}`;
}

/**
 * An argument of the command as the report shows it: URLs inside it redacted like request URLs, and the value of
 * an Authorization, Proxy-Authorization or Cookie header given on the command line (curl -H "…") replaced.
 */
export function redactArgument(argument: string): string {
  return argument
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"]+/gi, (url) => redactUrl(url))
    .replace(/\b((?:proxy-)?authorization|cookie)(\s*:\s*)[^\r\n]*/gi, '$1$2REDACTED');
}

function hostOf(flow: Flow): string {
  if (flow.kind === 'tunnel') return formatHost(flow.target.host, flow.target.port);
  return formatHost(flow.request.host, flow.request.port);
}

function formatHost(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class AuditRecorder {
  readonly #hosts = new Map<string, HostActivity>();
  readonly #denied: DeniedRequest[] = [];
  readonly #urlSets = new Map<string, Set<string>>();
  readonly #dependencies = new Map<string, PulledDependency>();

  get hosts(): HostActivity[] {
    return [...this.#hosts.values()].sort((a, b) => b.requests + b.tunnels - (a.requests + a.tunnels) || a.host.localeCompare(b.host));
  }

  get denied(): DeniedRequest[] {
    return this.#denied.slice();
  }

  /** Downloads recognised as packages, in the order they completed; one entry per URL and content. */
  get dependencies(): PulledDependency[] {
    return [...this.#dependencies.values()];
  }

  /** The addon that feeds this recorder. */
  addon(): Addon {
    const record = (flow: Flow): void => this.#record(flow);
    return { name: 'audit-recorder', requestHeaders: (flow) => this.#watchDownload(flow), response: record, error: record, tunnelClosed: record };
  }

  /** A GET of a package file: its body is hashed as it passes (a tap; nothing is held). */
  #watchDownload(flow: HttpFlow): void {
    if (flow.request.method !== 'GET' || flow.isUpgrade) return;
    const url = formatAbsoluteUrl(flow.request);
    const dependency = recognizeDependency(url);
    if (dependency === undefined) return;
    const hash = createHash('sha256');
    let size = 0;
    flow.tapResponseBody({
      data(chunk) {
        hash.update(chunk);
        size += chunk.length;
      },
      end: () => {
        const status = flow.response?.status ?? 0;
        if (status < 200 || status >= 300) return;
        const sha256 = hash.digest('hex');
        const redacted = redactUrl(url);
        this.#dependencies.set(`${redacted} ${sha256}`, { ...dependency, url: redacted, size, sha256 });
      },
    });
  }

  #record(flow: Flow): void {
    const time = new Date(flow.timestamps.end ?? Date.now()).toISOString();
    const error = flow.error;
    if (error !== undefined && (DENIED_TYPES.has(error.type) || error.status === 407)) {
      this.#denied.push({
        time,
        target: flow.kind === 'http' ? redactUrl(formatAbsoluteUrl(flow.request)) : hostOf(flow),
        method: flow.kind === 'http' ? flow.request.method : 'CONNECT',
        reason: error.type,
        details: error.message,
      });
      return;
    }
    const key = hostOf(flow);
    let host = this.#hosts.get(key);
    if (host === undefined) {
      host = { host: key, schemes: [], requests: 0, tunnels: 0, bytesUp: 0, bytesDown: 0, methods: [], statuses: {}, first: time, last: time, urls: [], moreUrls: 0 };
      this.#hosts.set(key, host);
    }
    host.last = time;
    if (flow.kind === 'tunnel') {
      host.tunnels += 1;
      // An intercepted tunnel's requests are counted themselves; its own bytes are their ciphertext.
      if (flow.intercepted !== true) {
        host.bytesUp += flow.bytes.clientToServer;
        host.bytesDown += flow.bytes.serverToClient;
        addOnce(host.schemes, 'tunnel');
      }
      if (error !== undefined) host.statuses[`error:${error.type}`] = (host.statuses[`error:${error.type}`] ?? 0) + 1;
      return;
    }
    host.requests += 1;
    host.bytesUp += flow.bytes.requestBody;
    host.bytesDown += flow.bytes.responseBody;
    addOnce(host.schemes, flow.request.scheme);
    addOnce(host.methods, flow.request.method);
    const status = flow.response?.status;
    // A failure says which (the client got the proxy's own error status, with this type in Proxy-Status).
    const statusKey = error !== undefined ? `error:${error.type}` : status === undefined ? 'error' : String(status);
    host.statuses[statusKey] = (host.statuses[statusKey] ?? 0) + 1;
    const url = redactUrl(formatAbsoluteUrl(flow.request));
    let seen = this.#urlSets.get(key);
    if (seen === undefined) this.#urlSets.set(key, (seen = new Set()));
    if (seen.has(url)) return;
    if (seen.size >= URL_LIMIT) {
      host.moreUrls += 1;
      return;
    }
    seen.add(url);
    host.urls.push(url);
  }
}

function addOnce(list: string[], value: string): void {
  if (!list.includes(value)) list.push(value);
}
