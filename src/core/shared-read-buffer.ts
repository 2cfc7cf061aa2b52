/**
 * The one buffer every socket read through `onread` reads into (tunnels' ReadRelay, the plain-HTTP origin agent).
 * Safe to share because a read's callback runs to completion before any other read happens, and every reader
 * copies out (or hands to a parser that copies) what it needs before its callback returns.
 */

/**
 * The most one read takes. Four times what Node's own stream reads ask for: a busy socket's queue often holds more
 * than 64 KiB, and each read (and the write it feeds) has a fixed cost, so larger reads mean fewer of both.
 * `npm run bench:pair` against 64 KiB, five repetitions: CPU per MiB 0.87 on tunnel bulk down, 0.87 on uploads,
 * 0.82 on the 64 MiB GET. There is one such buffer per process, so idle sockets pay nothing for its size.
 */
export const READ_SIZE = 262144;

export const sharedReadBuffer = Buffer.allocUnsafe(READ_SIZE);

/** Reads smaller than this are copied into a Buffer of their own size (Node pools those up to 4 KiB). */
export const SMALL_READ = 8192;

/**
 * Copies of reads come in two sizes, so that a modest read does not hold a whole READ_SIZE chunk while its write is
 * pending: up to 64 KiB (most reads of a socket that is not flooded) and up to READ_SIZE.
 */
const MEDIUM_CHUNK = 65536;
/** Free chunks kept for reuse per size (2 MiB of each); more than this are left to the garbage collector. */
const MAX_FREE_MEDIUM = 32;
const MAX_FREE_LARGE = 8;

const freeMedium: Buffer[] = [];
const freeLarge: Buffer[] = [];

/**
 * A chunk of at least `bytes` (at most READ_SIZE) to copy a read into, for a write that keeps its memory until the
 * kernel took it; given back with returnChunk() from that write's callback. With a fresh Buffer per read instead,
 * the direct exchange's profile of the 64 MiB GET row (`npm run bench:profile -- get64m`) had 30 % of the CPU in the
 * allocation and 21 % in the garbage collector; with these chunks, 8 % in the copy and 4 % in the collector.
 */
export function takeChunk(bytes: number): Buffer {
  if (bytes <= MEDIUM_CHUNK) return freeMedium.pop() ?? Buffer.allocUnsafeSlow(MEDIUM_CHUNK);
  return freeLarge.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
}

export function returnChunk(chunk: Buffer): void {
  if (chunk.length === MEDIUM_CHUNK) {
    if (freeMedium.length < MAX_FREE_MEDIUM) freeMedium.push(chunk);
  } else if (freeLarge.length < MAX_FREE_LARGE) {
    freeLarge.push(chunk);
  }
}
