/**
 * Holds one record's block while it streams past, because a WARC record header states the block's length and
 * digests before the block: the first `memoryBytes` stay in memory, the rest go to a temporary file, written with
 * back-pressure (each write is awaited before the tap lets the next chunk through). Digests are computed as bytes
 * arrive, so nothing is read twice to hash it.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID, type Hash } from 'node:crypto';
import { createDigest, formatDigest, type WarcDigestAlgorithm, type WarcTruncation } from './warc-format.js';

export interface RecordSpoolOptions {
  /** Where spill files go (the archive's own .spool directory, so they count against the same disk). */
  spoolDir: string;
  digest: WarcDigestAlgorithm;
  /** Bytes kept in memory before spilling to a file. */
  memoryBytes: number;
  /** The most block bytes (head and payload) kept; past it the record is truncated ("length"). */
  maxBlockBytes: number;
}

const READ_CHUNK_BYTES = 1 << 20;

const EMPTY_DIGESTS = new Map<WarcDigestAlgorithm, string>();

/** The digest of no bytes, computed once per algorithm. */
function emptyPayloadDigest(algorithm: WarcDigestAlgorithm): string {
  let value = EMPTY_DIGESTS.get(algorithm);
  if (value === undefined) EMPTY_DIGESTS.set(algorithm, (value = formatDigest(algorithm, createDigest(algorithm).digest())));
  return value;
}

export class RecordSpool {
  readonly #options: RecordSpoolOptions;
  readonly #head: Buffer;
  /** Made at the first payload byte: most requests (and 304s, HEADs) have none, and their digests are one-shot. */
  #blockHash: Hash | undefined;
  #payloadHash: Hash | undefined;
  #memory: Buffer[] = [];
  #memoryLength = 0;
  #file: FileHandle | undefined;
  #filePath: string | undefined;
  #fileLength = 0;
  /** Buffered for the next file write: spilled bytes go out in batches, not one write per chunk. */
  #pending: Buffer[] = [];
  #pendingLength = 0;
  /** Once one chunk went towards the file, every later one does too, so the order holds. */
  #spilling = false;
  /** File writes in order, one at a time. */
  #writing: Promise<void> = Promise.resolve();
  #payloadLength = 0;
  /** Bytes offered past the limit (seen, not kept). */
  #droppedLength = 0;
  #truncated: WarcTruncation | undefined;
  #sealed = false;
  #discarded = false;
  /** A spill write failed (full disk, file-size limit): nothing more is kept and the record cannot be written. */
  #failure: Error | undefined;

  /** `head` is the start of the block (an HTTP head), known before the body; it counts against the limit too. */
  constructor(head: Buffer, options: RecordSpoolOptions) {
    this.#options = options;
    this.#head = head;
  }

  get head(): Buffer {
    return this.#head;
  }

  get payloadLength(): number {
    return this.#payloadLength;
  }

  get blockLength(): number {
    return this.#head.length + this.#payloadLength;
  }

  /** Set once bytes were left out: by the size limit, or (markTruncated) because the exchange broke. */
  get truncated(): WarcTruncation | undefined {
    return this.#truncated;
  }

  /** Bytes seen but not kept because of the size limit. */
  get droppedLength(): number {
    return this.#droppedLength;
  }

  /**
   * Adds payload bytes. Returns a promise only when they went towards the disk and the write is under way; the
   * caller waits for it before offering more. The chunk is copied (or written) before this returns or settles.
   */
  append(chunk: Buffer): Promise<void> | undefined {
    // Bytes after the record was closed (an origin that answered before the whole request arrived) or after a
    // spill failure are seen, not kept: the traffic goes on either way.
    if (this.#sealed || this.#failure !== undefined) {
      this.#droppedLength += chunk.length;
      return undefined;
    }
    const room = this.#options.maxBlockBytes - this.blockLength;
    if (room <= 0) {
      this.#droppedLength += chunk.length;
      this.#truncated ??= 'length';
      return undefined;
    }
    let kept = chunk;
    if (chunk.length > room) {
      kept = chunk.subarray(0, room);
      this.#droppedLength += chunk.length - room;
      this.#truncated ??= 'length';
    }
    if (this.#blockHash === undefined) {
      this.#blockHash = createDigest(this.#options.digest).update(this.#head);
      this.#payloadHash = createDigest(this.#options.digest);
    }
    this.#blockHash.update(kept);
    this.#payloadHash!.update(kept);
    this.#payloadLength += kept.length;
    if (!this.#spilling && this.#memoryLength + kept.length <= this.#options.memoryBytes) {
      // The tap's buffer is the one being sent, and Node may reuse it: keep a copy.
      this.#memory.push(Buffer.from(kept));
      this.#memoryLength += kept.length;
      return undefined;
    }
    this.#spilling = true;
    this.#pending.push(Buffer.from(kept));
    this.#pendingLength += kept.length;
    if (this.#pendingLength < READ_CHUNK_BYTES) return undefined;
    return this.#flush();
  }

  /** The exchange broke after these bytes: the record says so instead of passing for the whole message. */
  markTruncated(reason: WarcTruncation): void {
    this.#truncated ??= reason;
  }

  /** Never rejects: a failed spill is the archive's problem (seal() reports it), not the proxied exchange's. */
  #flush(): Promise<void> {
    this.#writing = this.#writing.then(() => this.#writePending()).catch((err: unknown) => {
      this.#failure ??= err as Error;
      this.#pending = [];
      this.#pendingLength = 0;
    });
    return this.#writing;
  }

  async #writePending(): Promise<void> {
    if (this.#pendingLength === 0 || this.#discarded) return;
    const batch = this.#pending;
    this.#pending = [];
    const length = this.#pendingLength;
    this.#pendingLength = 0;
    if (this.#file === undefined) {
      this.#filePath = join(this.#options.spoolDir, `${randomUUID()}.spool`);
      this.#file = await open(this.#filePath, 'wx+', 0o600);
    }
    await this.#file.writev(batch);
    this.#fileLength += length;
  }

  /** No more bytes: flushes what waits for the disk. The digests are final from here. */
  async seal(): Promise<SealedSpool> {
    const { digest } = this.#options;
    if (!this.#sealed) {
      this.#sealed = true;
      await this.#flush();
    }
    return {
      failure: this.#failure,
      blockLength: this.blockLength,
      payloadLength: this.#payloadLength,
      blockDigest: formatDigest(digest, (this.#blockHash ?? createDigest(digest).update(this.#head)).digest()),
      payloadDigest: this.#payloadHash === undefined ? emptyPayloadDigest(digest) : formatDigest(digest, this.#payloadHash.digest()),
      truncated: this.#truncated,
      blocks: () => this.#blocks(),
      discard: () => this.discard(),
    };
  }

  async *#blocks(): AsyncGenerator<Buffer> {
    yield this.#head;
    for (const chunk of this.#memory) yield chunk;
    if (this.#file === undefined) return;
    const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, this.#fileLength));
    for (let position = 0; position < this.#fileLength; ) {
      const { bytesRead } = await this.#file.read(buffer, 0, Math.min(buffer.length, this.#fileLength - position), position);
      if (bytesRead === 0) throw new Error(`spool file ${this.#filePath} ended after ${position} of ${this.#fileLength} bytes`);
      position += bytesRead;
      // Copied because the next read reuses the buffer while the consumer may still hold this one (zlib does).
      yield Buffer.from(buffer.subarray(0, bytesRead));
    }
  }

  /** Frees the memory and removes the spill file. Safe to call more than once. */
  async discard(): Promise<void> {
    if (this.#discarded) return;
    this.#discarded = true;
    this.#memory = [];
    this.#pending = [];
    await this.#writing.catch(() => undefined);
    const file = this.#file;
    const path = this.#filePath;
    this.#file = undefined;
    if (file !== undefined) await file.close().catch(() => undefined);
    if (path !== undefined) await unlink(path).catch(() => undefined);
  }
}

/** A spool whose bytes are all in: what the writer needs to write its record. */
export interface SealedSpool {
  /** Set when spilling to disk failed: the block is incomplete and the record must not be written. */
  readonly failure: Error | undefined;
  readonly blockLength: number;
  readonly payloadLength: number;
  readonly blockDigest: string;
  readonly payloadDigest: string;
  readonly truncated: WarcTruncation | undefined;
  /** The block: the head, then the payload, read back from memory and the spill file. */
  blocks(): AsyncIterable<Buffer>;
  discard(): Promise<void>;
}
