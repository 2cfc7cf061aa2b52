/**
 * One record ready for the writer: its header bytes and its block. The header is made only once the block is
 * complete, because it states the block's length and digests (§5.7–5.9).
 */
import { createDigest, formatDigest, formatWarcHeader, type WarcDigestAlgorithm, type WarcField, type WarcVersion } from './warc-format.js';
import type { SealedSpool } from './record-spool.js';

export interface WarcRecord {
  readonly header: Buffer;
  readonly blockLength: number;
  blocks(): AsyncIterable<Buffer>;
  /** Frees what holds the block (a spill file); called once the record is written or dropped. */
  release(): Promise<void>;
}

/** A block that is already whole in memory (warcinfo, metadata, heads of revisits). */
export interface BufferBlock {
  readonly bytes: Buffer;
  readonly blockDigest: string;
}

export function bufferBlock(bytes: Buffer, digest: WarcDigestAlgorithm): BufferBlock {
  return { bytes, blockDigest: formatDigest(digest, createDigest(digest).update(bytes).digest()) };
}

/**
 * `fields` are the record's own (type, id, date, target, links, ...) in the order they are written; the block's
 * Content-Type, digests, WARC-Truncated and Content-Length follow them.
 */
export function recordFromBuffer(version: WarcVersion, fields: readonly WarcField[], contentType: string, block: BufferBlock, payloadDigest?: string): WarcRecord {
  const all: WarcField[] = [...fields, ['Content-Type', contentType], ['WARC-Block-Digest', block.blockDigest]];
  if (payloadDigest !== undefined) all.push(['WARC-Payload-Digest', payloadDigest]);
  all.push(['Content-Length', String(block.bytes.length)]);
  const bytes = block.bytes;
  return {
    header: formatWarcHeader(version, all),
    blockLength: bytes.length,
    async *blocks() {
      yield bytes;
    },
    release: () => Promise.resolve(),
  };
}

export function recordFromSpool(version: WarcVersion, fields: readonly WarcField[], contentType: string, spool: SealedSpool, withPayloadDigest: boolean): WarcRecord {
  const all: WarcField[] = [...fields, ['Content-Type', contentType], ['WARC-Block-Digest', spool.blockDigest]];
  if (withPayloadDigest) all.push(['WARC-Payload-Digest', spool.payloadDigest]);
  if (spool.truncated !== undefined) all.push(['WARC-Truncated', spool.truncated]);
  all.push(['Content-Length', String(spool.blockLength)]);
  return {
    header: formatWarcHeader(version, all),
    blockLength: spool.blockLength,
    blocks: () => spool.blocks(),
    release: () => spool.discard(),
  };
}
