/**
 * Gzip members (RFC 1952), one per WARC record, made by one long-lived raw deflate stream instead of a new gzip
 * stream per record. zlib's per-stream set-up (about 400 KB allocated and cleared) cost more than compressing a
 * small record, and per-record contexts made the proxy's RSS balloon across libuv's threads. Each member is the
 * fixed 10-byte header, the deflate output for the record ended with a full flush (byte-aligned, window reset, so
 * nothing refers to an earlier record), an empty final block, and the CRC-32 and length of the record. Any gzip
 * reader reads the members one by one, as if each had been compressed alone.
 */
import { constants, crc32, createDeflateRaw, deflateRaw, type DeflateRaw } from 'node:zlib';
import { promisify } from 'node:util';

const deflateRawAsync = promisify(deflateRaw);

/** ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown). */
const MEMBER_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]);
/** A final, empty block with fixed codes (BFINAL=1, BTYPE=01, end-of-block), byte-aligned after a full flush. */
const FINAL_EMPTY_BLOCK = Buffer.from([0x03, 0x00]);

function trailer(crc: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeUInt32LE(crc >>> 0, 0);
  bytes.writeUInt32LE(length % 2 ** 32, 4);
  return bytes;
}

export class GzipMemberEncoder {
  readonly #deflate: DeflateRaw;
  /** Where output goes right now: the member being made. */
  #output: Buffer[] = [];
  #failure: Error | undefined;

  constructor(level: number) {
    this.#deflate = createDeflateRaw({ level, chunkSize: 64 * 1024 });
    this.#deflate.on('data', (chunk: Buffer) => this.#output.push(chunk));
    this.#deflate.on('error', (err) => (this.#failure = err));
  }

  /** Ends the member's deflate data with a full flush; resolves with what the stream produced since the last take. */
  #flush(): Promise<Buffer[]> {
    return new Promise((resolve, reject) => {
      // The flush callback runs once its output has been emitted (the pattern ws uses for permessage-deflate).
      this.#deflate.flush(constants.Z_FULL_FLUSH, () => {
        if (this.#failure !== undefined) return reject(this.#failure);
        const out = this.#output;
        this.#output = [];
        resolve(out);
      });
    });
  }

  /** One member for bytes already in memory. Members must be made one at a time (the writer's queue sees to it). */
  async member(parts: readonly Buffer[]): Promise<Buffer[]> {
    let crc = 0;
    let length = 0;
    for (const part of parts) {
      crc = crc32(part, crc);
      length += part.length;
      this.#deflate.write(part);
    }
    const body = await this.#flush();
    return [MEMBER_HEADER, ...body, FINAL_EMPTY_BLOCK, trailer(crc, length)];
  }

  close(): void {
    this.#deflate.close();
  }
}

/**
 * A gzip member holding `data` in one stored (uncompressed) deflate block, made by hand. For records so small that
 * compressing them saves a few hundred bytes at most, this skips zlib's per-call set-up (a stream object, a context
 * allocated and cleared), which costs more CPU than the rest of archiving such an exchange. Up to 65,535 bytes.
 */
export function storedMember(data: Buffer): Buffer[] {
  if (data.length > 0xffff) throw new RangeError('a stored block holds at most 65535 bytes');
  const block = Buffer.allocUnsafe(5);
  block[0] = 0x01; // BFINAL=1, BTYPE=00 (stored)
  block.writeUInt16LE(data.length, 1);
  block.writeUInt16LE(~data.length & 0xffff, 3);
  return [MEMBER_HEADER, block, data, trailer(crc32(data), data.length)];
}

export interface ParallelOptions {
  /** Input bytes per independently compressed piece. */
  pieceBytes: number;
  /** Pieces being compressed at once (libuv's pool has four threads unless UV_THREADPOOL_SIZE says otherwise). */
  inFlight: number;
}

/**
 * One member for a large record, compressed the way pigz does: the input is cut into pieces deflated
 * independently and at the same time on libuv's threads, each ended with a sync flush (byte-aligned, not final),
 * so their outputs concatenate into one valid deflate stream; an empty final block and the trailer close it. The
 * CRC-32 runs over the input in order here, so nothing needs combining. Pieces of 1 MiB lose next to nothing to
 * the reset window; one deflate stream would keep the whole record on one core (about 120 MB/s at level 6 on our
 * bench machine).
 */
export async function parallelMember(source: AsyncIterable<Buffer>, level: number, sink: (chunk: Buffer) => Promise<void>, options: ParallelOptions): Promise<void> {
  await sink(MEMBER_HEADER);
  let crc = 0;
  let length = 0;
  const queue: Array<Promise<Buffer>> = [];
  let pending: Buffer[] = [];
  let pendingLength = 0;
  const launch = (): void => {
    const piece = Buffer.concat(pending, pendingLength);
    pending = [];
    pendingLength = 0;
    const compressed = deflateRawAsync(piece, { level, finishFlush: constants.Z_SYNC_FLUSH });
    // Awaited in order below; if writing fails first, a later failure here must not go unhandled.
    compressed.catch(() => undefined);
    queue.push(compressed);
  };
  for await (const part of source) {
    crc = crc32(part, crc);
    length += part.length;
    pending.push(part);
    pendingLength += part.length;
    if (pendingLength < options.pieceBytes) continue;
    launch();
    if (queue.length >= options.inFlight) await sink(await queue.shift()!);
  }
  if (pendingLength > 0) launch();
  while (queue.length > 0) await sink(await queue.shift()!);
  await sink(FINAL_EMPTY_BLOCK);
  await sink(trailer(crc, length));
}
