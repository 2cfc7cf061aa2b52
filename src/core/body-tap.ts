/**
 * Body taps: how an addon sees a request or response body as it streams, without the proxy holding it. A WARC
 * archiver, a hasher or an audit recorder taps; flows nobody taps keep the plain pipe.
 */
import { ProxyError } from './errors.js';

/**
 * Receives one body's bytes in order. Every method may return a promise: the body stops flowing until it
 * settles, so a slow consumer (a disk) slows the transfer instead of growing memory. A tap that throws or
 * rejects fails the flow closed, like a hook; a tap that must never break traffic catches its own errors.
 */
export interface BodyTap {
  /**
   * A chunk of the body, as relayed: transfer coding removed (no chunk framing), content coding kept (gzip stays
   * gzip). The buffer is the one being sent; copy it if you keep it past the returned promise.
   */
  data?(chunk: Buffer): void | Promise<void>;
  /**
   * The body is complete. For a response, the client has been sent its last byte; the flow's `response` hook
   * runs only once every tap's `end` has settled, so a record started in a tap is finished by then.
   */
  end?(): void | Promise<void>;
  /**
   * The body broke before its end (a peer went away, a timeout, a limit): what the tap saw is truncated and must
   * not be taken for the whole body. Called at most once, never after `end`. `flow.error` says why.
   */
  abort?(error: ProxyError): void;
}

function tapFailure(event: string, err: unknown): ProxyError {
  return new ProxyError('proxy_internal_error', `a body tap failed in ${event}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Tap lists that got `end` or `abort`: each list hears exactly one of them. */
const settled = new WeakSet<readonly BodyTap[]>();

/**
 * Runs every tap's method for one event; returns a promise only when some tap returned one. A tap that throws
 * or rejects surfaces as ProxyError('proxy_internal_error'), so the caller fails the flow closed.
 */
export function notifyTaps(taps: readonly BodyTap[], event: 'data' | 'end', chunk?: Buffer): Promise<unknown> | undefined {
  if (event === 'end') settled.add(taps);
  let pending: Array<PromiseLike<void>> | undefined;
  for (const tap of taps) {
    let result: void | Promise<void> | undefined;
    try {
      result = event === 'data' ? tap.data?.(chunk!) : tap.end?.();
    } catch (err) {
      throw tapFailure(event, err);
    }
    if (result !== undefined && typeof (result as PromiseLike<void>).then === 'function') (pending ??= []).push(result);
  }
  if (pending === undefined) return undefined;
  const all = pending.length === 1 ? Promise.resolve(pending[0]) : Promise.all(pending);
  return all.catch((err: unknown) => {
    throw tapFailure(event, err);
  });
}

/**
 * Tells every tap the body broke, unless the list already heard `end` or `abort`. A tap that throws here is
 * ignored: the flow is failing already.
 */
export function abortTaps(taps: readonly BodyTap[] | undefined, error: ProxyError): void {
  if (taps === undefined || settled.has(taps)) return;
  settled.add(taps);
  for (const tap of taps) {
    try {
      tap.abort?.(error);
    } catch {
      // The flow already failed with `error`; a second failure while reporting it changes nothing.
    }
  }
}
