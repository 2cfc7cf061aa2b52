import type { Logger } from 'pino';
import type { Hooks } from './hooks.js';
import type { CoreOptions } from './options.js';

/** What an addon gets from the proxy it runs in: no globals, so two proxies can share one process. */
export interface AddonContext {
  readonly logger: Logger;
  /** The resolved listening address, timeouts and limits (upstream and interception settings are their modules'). */
  readonly options: Readonly<CoreOptions>;
}

/**
 * An addon is a named object with any subset of the hooks. Handlers run in the order addons were given; a
 * handler may return a promise, and the next one waits for it. A handler that throws a `ProxyError` refuses the
 * flow with that error (`new ProxyError('http_request_denied', 'not on the list')` is a 403 with Proxy-Status);
 * anything else thrown fails the flow closed (500 / `proxy_internal_error`), because a policy addon that fails
 * must not let traffic through.
 *
 * @example
 * const stamp: Addon = {
 *   name: 'stamp',
 *   requestHeaders(flow) { flow.request.headers.set('X-Seen-By', 'getaway'); },
 * };
 */
export type Addon = { readonly name: string } & Partial<Hooks>;
