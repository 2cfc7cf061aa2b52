/**
 * Relays a body while body taps watch it: each chunk goes to the taps and to the destination, and the next one
 * is read only when the destination has room and every tap's promise has settled. Pull-based (async iteration),
 * so back-pressure from either a slow peer or a slow tap is the same wait. Used only for tapped flows; others
 * keep pipe().
 */
import type { Readable, Writable } from 'node:stream';
import { abortTaps, notifyTaps, type BodyTap } from '../core/body-tap.js';
import { ProxyError, toProxyError } from '../core/errors.js';

export interface TappedRelayOptions {
  /** Set while the relay waits for the destination or a tap, not for the source: a held-back body is not idle. */
  holding?: { value: boolean };
  /**
   * "response": on failure both sides are destroyed (the origin's body is of no use once the client's response
   * broke, and the reverse). "request": the source is the client connection, which must live on to carry the
   * error response, and the caller destroys the origin request with the reason this rejects with.
   */
  mode: 'response' | 'request';
  /**
   * The length the destination's head announced, when it came from a hook rather than a parser: a source that
   * ends short fails instead of ending a response the client would wait on for ever (Node refuses only excess).
   */
  expectedLength?: number;
}

/** A body with no bytes, for tapped flows whose message has none (taps then get only `end`). */
export const EMPTY_BODY: AsyncIterable<Uint8Array> = { async *[Symbol.asyncIterator]() {} };

function receiverClosed(): Error {
  return Object.assign(new Error('the receiving side closed mid-body'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

function drained(destination: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      destination.removeListener('drain', onDrain);
      destination.removeListener('close', onClose);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (): void => {
      cleanup();
      reject(receiverClosed());
    };
    destination.on('drain', onDrain);
    destination.on('close', onClose);
  });
}

function finishedWriting(destination: Writable): Promise<void> {
  if (destination.writableFinished) return Promise.resolve();
  return new Promise((resolve, reject) => {
    destination.once('finish', resolve);
    destination.once('close', () => {
      if (!destination.writableFinished) reject(receiverClosed());
    });
  });
}

/**
 * Resolves when the body went through whole and every tap's `end` settled; rejects otherwise, after telling the
 * taps (`abort`) that what they saw is truncated.
 */
export async function relayTapped(
  source: Readable | AsyncIterable<Uint8Array>,
  destination: Writable,
  taps: readonly BodyTap[],
  onChunk: (length: number) => void,
  options: TappedRelayOptions,
): Promise<void> {
  const readable = 'iterator' in source && typeof source.iterator === 'function' ? source : undefined;
  const destroySource = options.mode === 'response';
  let relayed = 0;
  // A failing destination must stop the read: a pending read of a silent source would otherwise never return.
  const stopSource = (): void => {
    if (readable !== undefined && destroySource && !destination.writableFinished) readable.destroy();
  };
  destination.once('close', stopSource);
  try {
    const chunks = readable !== undefined ? readable.iterator({ destroyOnReturn: destroySource }) : source;
    for await (const piece of chunks as AsyncIterable<Uint8Array>) {
      if (destination.destroyed) throw receiverClosed();
      const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      relayed += chunk.length;
      onChunk(chunk.length);
      const tapsDone = notifyTaps(taps, 'data', chunk);
      destination.write(chunk);
      if (tapsDone !== undefined || destination.writableNeedDrain) {
        if (options.holding) options.holding.value = true;
        if (tapsDone !== undefined) await tapsDone;
        // Asked after the taps: the destination may have drained while they ran, and 'drain' does not come twice.
        if (destination.writableNeedDrain) await drained(destination);
        if (options.holding) options.holding.value = false;
      }
    }
    if (readable !== undefined && !readable.readableEnded) throw Object.assign(new Error('the sending side closed mid-body'), { code: 'ECONNRESET' });
    if (options.expectedLength !== undefined && relayed !== options.expectedLength) {
      throw new ProxyError('proxy_internal_error', `the body ended after ${relayed} of the ${options.expectedLength} bytes its Content-Length announced`);
    }
    destination.end();
    const ended = notifyTaps(taps, 'end');
    if (ended !== undefined) await ended;
    await finishedWriting(destination);
  } catch (err) {
    const error = toProxyError(err, 'http_response_incomplete');
    abortTaps(taps, error);
    if (destroySource) {
      readable?.destroy();
      destination.destroy();
    }
    throw error;
  } finally {
    destination.removeListener('close', stopSource);
  }
}
