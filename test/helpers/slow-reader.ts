import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

/** What a slow reader saw: the byte count and the SHA-256 of the bytes in order. */
export interface SlowRead {
  length: number;
  sha256: string;
}

/**
 * Digests bytes as a slow receiver would read them: after every MiB the stream is paused for `pauseMs`, so the
 * sender's writes stay pending and buffers fill. Feed it with `take` (from a 'data' handler that may skip a head
 * first); `result()` is the digest so far.
 */
export function slowDigest(stream: Readable, pauseMs = 40): { take(chunk: Buffer): void; result(): SlowRead } {
  const hash = createHash('sha256');
  let length = 0;
  let sinceBreak = 0;
  return {
    take(chunk: Buffer): void {
      hash.update(chunk);
      length += chunk.length;
      sinceBreak += chunk.length;
      if (sinceBreak >= 1024 * 1024) {
        sinceBreak = 0;
        stream.pause();
        setTimeout(() => stream.resume(), pauseMs);
      }
    },
    result: () => ({ length, sha256: hash.digest('hex') }),
  };
}
