/**
 * The one buffer every socket read through `onread` reads into (tunnels' ReadRelay, the plain-HTTP origin agent).
 * Safe to share because a read's callback runs to completion before any other read happens, and every reader
 * copies out (or hands to a parser that copies) what it needs before its callback returns.
 */

/** What Node's own stream reads ask for. */
export const READ_SIZE = 65536;

export const sharedReadBuffer = Buffer.allocUnsafe(READ_SIZE);

/** Reads smaller than this are copied into a Buffer of their own size (Node pools those up to 4 KiB). */
export const SMALL_READ = 8192;
/** Free chunks kept for reuse; more than this are left to the garbage collector. */
const MAX_FREE_CHUNKS = 32;

const freeChunks: Buffer[] = [];

/**
 * A READ_SIZE chunk to copy a read into for a write that keeps its memory until the kernel took it; given back with
 * returnChunk() from that write's callback. With a fresh Buffer per read instead, the direct exchange's profile of the
 * 64 MiB GET row (`npm run bench:profile -- get64m`) had 30 % of the CPU in the allocation and 21 % in the garbage
 * collector; with these chunks, 8 % in the copy and 4 % in the collector.
 */
export function takeChunk(): Buffer {
  return freeChunks.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
}

export function returnChunk(chunk: Buffer): void {
  if (freeChunks.length < MAX_FREE_CHUNKS) freeChunks.push(chunk);
}
