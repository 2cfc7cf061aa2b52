import type { ProxyError } from './errors.js';

/** An address getaway is about to connect to for a flow: after DNS, or the peer of a pooled connection it reuses. */
export interface DialAddress {
  /** The name or literal the flow asked for (`flow.request.host`, `flow.target.host`). */
  readonly host: string;
  /** The IP address actually dialled, as the resolver or the socket gave it. */
  readonly ip: string;
  readonly port: number;
}

/**
 * Decides whether an address may be dialled: undefined to go ahead, the error to fail with otherwise. Synchronous,
 * because it runs inside the resolver's callback and before a pooled connection is written to.
 */
export type DestinationGuard = (ip: string, port: number) => ProxyError | undefined;
