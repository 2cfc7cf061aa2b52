/**
 * Flows: one object per proxied request or tunnel, read by every consumer (logs, addons, later WARC, audit,
 * metrics and the live view). Consumers never reach into sockets; what they need is a field here.
 */
import { randomUUID } from 'node:crypto';
import type { BodyTap } from './body-tap.js';
import type { ClientInfo } from './connection.js';
import { ProxyError } from './errors.js';
import { HeaderList } from './header-list.js';
import type { LiveEntry } from './live-list.js';

/** The scheme of a request's target: plain requests say it in their URI; tunnels and intercepted requests are https. */
export type TargetScheme = 'http' | 'https';

/** One line of a flow's routing record: what was tried or skipped, and why. */
export interface RouteAttempt {
  route: string;
  outcome: 'served' | 'failed' | 'skipped';
  reason?: string;
}

/** The request as the client sent it. Read-only: it is the record of what arrived (proxy-auth reads it). */
export interface ClientRequestHead {
  readonly method: string;
  /** The request-target exactly as received. */
  readonly target: string;
  /** "1.1" or "1.0". */
  readonly httpVersion: string;
  readonly headers: HeaderList;
}

/**
 * The request as it will be sent to the origin. Hop-by-hop fields are already removed and Via is added
 * before any hook sees it, so whatever a hook sets here is sent.
 */
export interface OutboundRequest {
  method: string;
  scheme: TargetScheme;
  host: string;
  port: number;
  /** Path and query. */
  path: string;
  headers: HeaderList;
}

export interface FlowResponse {
  status: number;
  /** Reason phrase; the standard one for `status` when omitted. */
  reason?: string;
  headers: HeaderList;
  /**
   * Only for responses made by the proxy (a hook answering in place of the origin). Responses relayed from the
   * origin are streamed and never held here. A stream (a Readable, or any async iterable of bytes) is sent as it
   * is read, with back-pressure: a Content-Length header set by the hook frames it (and a stream that yields more
   * or fewer bytes breaks the connection, never the framing); without one it goes chunked (close-delimited to an
   * HTTP/1.0 client). Stream bodies answer plain requests only, not CONNECT or upgrades.
   */
  body?: string | Uint8Array | AsyncIterable<Uint8Array>;
}

export interface FlowTimestamps {
  /** Epoch milliseconds at which the request head (or CONNECT) was received. */
  readonly start: number;
  /** The upstream connection was ready (reused or newly dialled). */
  upstreamConnected?: number;
  /** The response head was received (or made by a hook). */
  responseHeaders?: number;
  /** The flow ended, successfully or not. */
  end?: number;
}

/**
 * Where a flow goes, when a hook decides instead of the route rules: straight to the origin, through one of an
 * upstream group's proxies (in the strategy's order, with failover inside the group), or through one upstream
 * named by its id (its URL without credentials, as `flow.upstream` shows it).
 */
export type RouteChoice = 'direct' | { group: string } | { upstream: string };

/** @internal Where the proxy keeps a flow's place among the active flows (see live-list.ts). */
export const activeEntry: unique symbol = Symbol('getaway.activeEntry');

/**
 * A UUID as one flat string. randomUUID() concatenates it from 20 pieces, and V8 keeps such a string as a tree of
 * cons cells until something reads it: about 400 bytes that every flow (and so every idle tunnel) held for the
 * life of the flow. Reading one character flattens it in place, leaving one cell around a 36-byte string.
 */
function flatUuid(): string {
  const id = randomUUID();
  id.charCodeAt(0);
  return id;
}

abstract class BaseFlow {
  readonly id: string = flatUuid();
  readonly client: ClientInfo;
  readonly clientRequest: ClientRequestHead;
  readonly timestamps: FlowTimestamps = { start: Date.now() };
  /** Set when the flow failed; a flow with an error got the `error` hook (or `tunnelClosed`, if it was open). */
  error: ProxyError | undefined;
  /** Which route served the flow: "direct", or the upstream proxy's id (its URL without credentials). */
  upstream: string | undefined;
  /**
   * Set by a hook (`requestHeaders`, `connect`) to choose the route instead of the route rules; undefined lets
   * them decide. A group or upstream that is not configured fails the flow with 500 proxy_configuration_error.
   *
   * @example
   * requestHeaders(flow) { if (flow.request.host.endsWith('.crawl.example')) flow.route = { group: 'residential' }; }
   */
  route: RouteChoice | undefined = undefined;
  /**
   * Who the client proved to be: set by the proxy-auth addon (or any addon that authenticates) from
   * `Proxy-Authorization`, undefined when nobody authenticated. Requests inside an intercepted tunnel start with
   * the tunnel's user. The flow log records it and the sticky-user strategy keys on it.
   */
  user: string | undefined = undefined;
  /** Every route considered, in order: skipped (unhealthy, cooling down), failed (and why), served. */
  readonly routeAttempts: RouteAttempt[] = [];
  /** Free space for addons, by convention keyed by addon name. */
  readonly metadata: Record<string, unknown> = {};
  #killed = false;
  #onKill: (() => void) | undefined;
  /** @internal */
  [activeEntry]: LiveEntry | undefined = undefined;

  constructor(client: ClientInfo, clientRequest: ClientRequestHead) {
    this.client = client;
    this.clientRequest = clientRequest;
  }

  get killed(): boolean {
    return this.#killed;
  }

  /**
   * Drops the flow: the client connection is closed without a response and nothing more is sent upstream.
   * Safe to call from any hook, and more than once.
   */
  kill(): void {
    if (this.#killed) return;
    this.#killed = true;
    this.error ??= new ProxyError('proxy_internal_response', 'flow killed by an addon');
    this.#onKill?.();
  }

  /** @internal The IO layer registers how to tear the flow down. */
  setKillHandler(handler: () => void): void {
    this.#onKill = handler;
    if (this.#killed) handler();
  }
}

/**
 * The response head exactly as it arrived from the origin (or from the upstream proxy that forwarded it): before
 * hop-by-hop fields were removed, Via added or any hook ran. What an archive records as the exchange.
 */
export class ReceivedResponse {
  readonly status: number;
  readonly reason: string;
  /** "1.1" or "1.0". */
  readonly httpVersion: string;
  readonly #raw: readonly string[];
  #headers: HeaderList | undefined;

  /** @internal `raw` is Node's flat rawHeaders array, which nothing mutates; the HeaderList is made on first read. */
  constructor(status: number, reason: string, httpVersion: string, raw: readonly string[]) {
    this.status = status;
    this.reason = reason;
    this.httpVersion = httpVersion;
    this.#raw = raw;
  }

  /** The fields as received: order, case and repeats kept. A copy of its own, so changing it changes nothing sent. */
  get headers(): HeaderList {
    this.#headers ??= new HeaderList(this.#raw);
    return this.#headers;
  }
}

/** The connection a request went out on, as the IO layer saw it when the response head arrived. */
export interface UpstreamConnectionInfo {
  /** The address actually connected to: the origin's, or the upstream proxy's when one forwarded the request. */
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** For TLS to the origin (https://, also inside a tunnel through an upstream). */
  tls?: {
    protocol: string | null;
    /** OpenSSL's name for the cipher. */
    cipher: string | undefined;
    /** The IANA name (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), what WARC-Cipher-Suite records. */
    cipherSuite: string | undefined;
    alpnProtocol: string | false | null | undefined;
  };
}

export class HttpFlow extends BaseFlow {
  readonly kind = 'http';
  /** What goes to the origin. Mutable in `requestHeaders`; changing host/port changes where it goes. */
  request: OutboundRequest;
  /**
   * Set by the proxy from the origin's response head, or by a hook in `requestHeaders` to answer without asking
   * the origin. In `responseHeaders`, status and headers may be changed before they are sent.
   */
  response: FlowResponse | undefined;
  /** True when the request asked to switch protocols (WebSocket) and was handled as an upgrade. */
  readonly isUpgrade: boolean;
  /** The intercepted CONNECT tunnel this request arrived through, decrypted; undefined for plain proxy requests. */
  readonly tunnel: TunnelFlow | undefined;
  /** Body bytes, without framing. For an upgrade, the bytes spliced each way after the 101. */
  readonly bytes = { requestBody: 0, responseBody: 0 };
  /** The origin's response head as received, before anything was changed; undefined until it arrives (or for answers hooks made). */
  receivedResponse: ReceivedResponse | undefined;
  /** Where the request went out, once the response head arrived. */
  upstreamConnection: UpstreamConnectionInfo | undefined;
  #requestTaps: BodyTap[] | undefined;
  #responseTaps: BodyTap[] | undefined;

  constructor(client: ClientInfo, clientRequest: ClientRequestHead, request: OutboundRequest, isUpgrade: boolean, tunnel?: TunnelFlow) {
    super(client, clientRequest);
    this.request = request;
    this.response = undefined;
    this.isUpgrade = isUpgrade;
    this.tunnel = tunnel;
    this.user = tunnel?.user;
    this.receivedResponse = undefined;
    this.upstreamConnection = undefined;
  }

  /**
   * Sees the request body as it is sent to the origin. Call it from `requestHeaders`; a request without a body
   * gets only `end`. For an upgrade (WebSocket) it sees the bytes the client sends after the 101, frames and
   * all, up to the client's FIN; for a request a hook answered it gets only `abort` or nothing.
   *
   * @example
   * requestHeaders(flow) { let n = 0; flow.tapRequestBody({ data: (c) => void (n += c.length), end: () => console.log(n) }); }
   */
  tapRequestBody(tap: BodyTap): void {
    (this.#requestTaps ??= []).push(tap);
  }

  /**
   * Sees the response body as it is sent to the client (transfer coding removed, content coding kept). Call it
   * from `requestHeaders` or `responseHeaders`. A response without a body (HEAD, 204, 304) gets only `end`.
   * Also fires for a response a hook made. For an accepted upgrade it sees the bytes the origin sends after the 101.
   */
  tapResponseBody(tap: BodyTap): void {
    (this.#responseTaps ??= []).push(tap);
  }

  /** @internal */
  get requestTaps(): readonly BodyTap[] | undefined {
    return this.#requestTaps;
  }

  /** @internal */
  get responseTaps(): readonly BodyTap[] | undefined {
    return this.#responseTaps;
  }
}

/**
 * What to do with a CONNECT. Set by `connect` hooks, the built-in interception-policy addon first: "mitm" for
 * hosts the policy covers (when a CA is configured) and "tunnel" otherwise. "deny" answers with `flow.response` if a hook set one,
 * else 403. "mitm" terminates TLS with a minted certificate when the client speaks TLS, and tunnels anything else.
 */
export type TunnelAction = 'tunnel' | 'mitm' | 'deny';

export class TunnelFlow extends BaseFlow {
  readonly kind = 'tunnel';
  /** Where the tunnel goes. A `connect` hook may change it. */
  target: { host: string; port: number };
  action: TunnelAction = 'tunnel';
  /**
   * What the client was answered: set by a `connect` hook that denies with something other than a plain 403,
   * else by the proxy (200 Connection Established, or the error response).
   */
  response: FlowResponse | undefined;
  /** Bytes spliced each way, including bytes that arrived together with the CONNECT head. */
  readonly bytes = { clientToServer: 0, serverToClient: 0 };
  /** For action "mitm": true once TLS was terminated, false when the traffic was not TLS and went through untouched. */
  intercepted: boolean | undefined;
  /**
   * True for a connection redirected to a transparent listener rather than asked for with CONNECT (its
   * `clientRequest` is a CONNECT getaway wrote for it): nothing is written to the client before the origin speaks,
   * no 200 and no error response; a refusal closes the connection. The original destination is `client.destination`.
   */
  readonly redirected: boolean;
  #clientToServerTaps: BodyTap[] | undefined;
  #serverToClientTaps: BodyTap[] | undefined;

  constructor(client: ClientInfo, clientRequest: ClientRequestHead, target: { host: string; port: number }, redirected = false) {
    super(client, clientRequest);
    this.target = target;
    this.redirected = redirected;
  }

  /**
   * Sees the bytes the client sends through the tunnel (bytes that came with the CONNECT head first), with the
   * same contract as HttpFlow's body taps; `end` at the client's FIN. Call it from `connect` or `tunnelOpened`. An
   * intercepted tunnel ("mitm") carries TLS: tap its decrypted HTTP flows instead, these bytes are not spliced.
   */
  tapClientToServer(tap: BodyTap): void {
    (this.#clientToServerTaps ??= []).push(tap);
  }

  /** Sees the bytes the server sends through the tunnel; `end` at the server's FIN. See tapClientToServer. */
  tapServerToClient(tap: BodyTap): void {
    (this.#serverToClientTaps ??= []).push(tap);
  }

  /** @internal */
  get clientToServerTaps(): readonly BodyTap[] | undefined {
    return this.#clientToServerTaps;
  }

  /** @internal */
  get serverToClientTaps(): readonly BodyTap[] | undefined {
    return this.#serverToClientTaps;
  }
}

export type Flow = HttpFlow | TunnelFlow;
