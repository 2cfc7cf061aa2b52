/**
 * The hook contract. docs/hooks.md is generated from the comments in `Hooks` (npm run docs:hooks), and a
 * test fails when it drifts, so this file is the one source of truth.
 */
import type { AddonContext } from './addon.js';
import type { ClientInfo } from './connection.js';
import type { DialAddress } from './destination.js';
import type { Flow, HttpFlow, TunnelFlow } from './flow.js';

export interface Hooks {
  /**
   * The proxy is listening. Called once per `listen()`, before any flow. The context carries the logger and
   * the validated options; keep it instead of reaching for globals.
   */
  running(context: AddonContext): void | Promise<void>;

  /**
   * A client connected. Throwing (or rejecting) closes the connection before any request on it is read.
   */
  clientConnected(client: ClientInfo): void | Promise<void>;

  /**
   * A request head arrived and its target parsed. Hop-by-hop fields are already gone from `flow.request` and
   * Via is added, so anything a hook sets is sent. Mutate `flow.request` to rewrite it (host and port change
   * where it goes, `flow.route` through which upstream); assign `flow.response` to answer from the proxy without asking the origin (its body may be
   * a stream, sent with back-pressure); call `flow.kill()` to drop it. Call `flow.tapRequestBody(tap)` or
   * `flow.tapResponseBody(tap)` to see a body as it streams (lifecycle.md, "Bodies"). Also fires for Upgrade
   * (WebSocket) requests, with `flow.isUpgrade` set.
   */
  requestHeaders(flow: HttpFlow): void | Promise<void>;

  /**
   * The origin's response head arrived (hop-by-hop fields removed, Via added; `flow.receivedResponse` keeps it as
   * it arrived). Status and headers may be changed before they are sent; the body is streamed afterwards and is
   * not held in memory (`flow.tapResponseBody(tap)` sees it as it passes). Also fires for an upgrade the origin
   * declined and for the 101 of one it accepted. Not called for responses a hook made in `requestHeaders`.
   */
  responseHeaders(flow: HttpFlow): void | Promise<void>;

  /**
   * The response was sent to the client completely (for an upgrade: the spliced connection closed cleanly), and
   * every body tap's `end` has settled. Every HTTP flow gets exactly one of `response` or `error`, never both.
   */
  response(flow: HttpFlow): void | Promise<void>;

  /**
   * A CONNECT arrived and its authority parsed. Set `flow.action = 'deny'` (optionally with `flow.response`) to
   * refuse it, change `flow.target` to send the tunnel elsewhere, or set `flow.route` to choose its upstream
   * (`'direct'`, `{ group }`, `{ upstream }`) instead of the route rules. With interception configured, the built-in
   * `interception-policy` addon runs first and sets `flow.action = "mitm"` for hosts the policy covers; set "tunnel"
   * to leave one alone, or "mitm" to intercept one.
   */
  connect(flow: TunnelFlow): void | Promise<void>;

  /**
   * getaway is about to connect to `address` for this flow: once per address a name resolved to (after DNS, so a
   * name that resolves somewhere forbidden is caught whatever it is called), for IP literals, and again each time
   * a pooled keep-alive connection is reused for the flow (its peer is checked for this flow, not the one that
   * opened it). Covers plain requests, CONNECT tunnels, upgrades and intercepted requests on direct routes; through
   * an upstream proxy the upstream resolves and dials, and only the upstream's own address is ours to dial.
   * Synchronous by contract (it runs inside the resolver's callback): throw a `ProxyError` to refuse, and the
   * flow fails with it (`destination_ip_prohibited` is 403) without trying another route; anything else
   * thrown, or a returned promise, fails the flow closed with 500.
   */
  dialing(flow: Flow, address: DialAddress): void;

  /**
   * The client got its 2xx; bytes start to flow. For a plain tunnel the upstream connection is up by then; for an
   * intercepted one ("mitm") nothing is dialled yet: the decrypted requests that follow are HTTP flows of their own,
   * with `flow.tunnel` pointing back here.
   */
  tunnelOpened(flow: TunnelFlow): void | Promise<void>;

  /**
   * Both sockets of an opened tunnel are closed. `flow.error` is set when it ended abnormally (reset, idle
   * timeout, shutdown). A tunnel that was opened always ends here and never in `error`.
   */
  tunnelClosed(flow: TunnelFlow): void | Promise<void>;

  /**
   * The flow failed: `flow.error` says how (an RFC 9209 type). For HTTP flows this replaces `response`; for
   * tunnels it fires only when the tunnel never opened (refused, denied, dial failed).
   */
  error(flow: Flow): void | Promise<void>;

  /** The proxy closed: every connection is gone. Flush and release what the addon holds. */
  done(): void | Promise<void>;
}

export type HookName = keyof Hooks;

export const HOOK_NAMES: readonly HookName[] = [
  'running',
  'clientConnected',
  'requestHeaders',
  'responseHeaders',
  'response',
  'connect',
  'dialing',
  'tunnelOpened',
  'tunnelClosed',
  'error',
  'done',
];
