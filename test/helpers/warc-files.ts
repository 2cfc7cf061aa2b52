/**
 * Reads WARC files back with webrecorder's warcio (a second implementation, not ours), and checks what every
 * record must satisfy: Content-Length is the block's length, WARC-Block-Digest and WARC-Payload-Digest match the
 * bytes recomputed here.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { WARCParser } from 'warcio';
import base32Encode from 'base32-encode';

export interface ReadRecord {
  type: string;
  /** WARC header fields, names lower-cased; repeated fields joined by ", " (warcio's Headers). */
  fields: Map<string, string>;
  /** Every value of a field, in order, read from the raw header text. */
  allFields: Array<[string, string]>;
  /** The block, whole (only when small enough to keep; see maxKeepBytes). */
  block: Buffer | undefined;
  blockLength: number;
  /** Payload: the block after the HTTP head, for request/response/revisit records. */
  payload: Buffer | undefined;
  payloadLength: number;
  payloadSha256: string;
  httpStatusLine: string | undefined;
  httpHeaders: Array<[string, string]>;
}

/** A digest in the label form of `like` (sha1: base32, sha256: hex). */
export function digestLabel(like: string, digest: Buffer): string {
  return like.startsWith('sha1:') ? `sha1:${base32Encode(digest, 'RFC4648')}` : `sha256:${digest.toString('hex')}`;
}

/**
 * Parses a file; throws when a record's Content-Length or digests disagree with its bytes. Blocks larger than
 * `maxKeepBytes` are hashed and counted but not kept.
 */
export async function readWarcFile(path: string, maxKeepBytes = 16 * 1024 * 1024): Promise<ReadRecord[]> {
  const records: ReadRecord[] = [];
  // parseHttp: false gives the block exactly as stored; the HTTP head is split off here, not rebuilt by warcio.
  const parser = new WARCParser(createReadStream(path), { parseHttp: false });
  for await (const record of parser) {
    const type = record.warcType ?? '';
    const blockDigest = record.warcHeader('WARC-Block-Digest') ?? undefined;
    const payloadDigest = record.warcHeader('WARC-Payload-Digest') ?? undefined;
    const blockHasher = blockDigest === undefined ? undefined : createHash(blockDigest.startsWith('sha1:') ? 'sha1' : 'sha256');
    const hasHttp = /^application\/http/.test(record.warcHeader('Content-Type') ?? '');
    const headParts: Buffer[] = [];
    let headDone = !hasHttp;
    const payloadHasher = payloadDigest === undefined ? undefined : createHash(payloadDigest.startsWith('sha1:') ? 'sha1' : 'sha256');
    const payloadSha = createHash('sha256');
    const kept: Buffer[] = [];
    let keptLength = 0;
    let blockLength = 0;
    let payloadLength = 0;
    const takePayload = (chunk: Buffer): void => {
      if (chunk.length === 0) return;
      payloadHasher?.update(chunk);
      payloadSha.update(chunk);
      payloadLength += chunk.length;
      if (keptLength + chunk.length <= maxKeepBytes) {
        kept.push(chunk);
        keptLength += chunk.length;
      }
    };
    for await (const piece of record.reader) {
      const chunk = Buffer.from(piece);
      blockHasher?.update(chunk);
      blockLength += chunk.length;
      if (headDone) {
        takePayload(chunk);
        continue;
      }
      headParts.push(chunk);
      const joined = Buffer.concat(headParts);
      const end = joined.indexOf('\r\n\r\n');
      if (end === -1) continue;
      headDone = true;
      headParts.length = 0;
      headParts.push(joined.subarray(0, end + 4));
      takePayload(joined.subarray(end + 4));
    }
    const contentLength = Number(record.warcHeader('Content-Length'));
    if (contentLength !== blockLength) throw new Error(`${path}: ${type} record says Content-Length ${contentLength}, block has ${blockLength}`);
    if (blockHasher !== undefined && digestLabel(blockDigest!, blockHasher.digest()) !== blockDigest) throw new Error(`${path}: ${type} block digest ${blockDigest} does not match its bytes`);
    if (payloadHasher !== undefined && type !== 'revisit' && digestLabel(payloadDigest!, payloadHasher.digest()) !== payloadDigest) {
      throw new Error(`${path}: ${type} payload digest ${payloadDigest} does not match its bytes`);
    }
    const fields = new Map<string, string>();
    const allFields: Array<[string, string]> = [];
    for (const [name, value] of record.warcHeaders.headers as Iterable<[string, string]>) {
      fields.set(name.toLowerCase(), value);
      allFields.push([name, value]);
    }
    const head = hasHttp ? headParts[0]?.toString('latin1') ?? '' : '';
    const lines = head.split('\r\n').filter((line) => line !== '');
    const httpHeaders = lines.slice(1).map((line): [string, string] => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]);
    const whole = keptLength === payloadLength;
    records.push({
      type,
      fields,
      allFields,
      block: whole ? Buffer.concat([...(hasHttp ? headParts : []), ...kept]) : undefined,
      blockLength,
      payload: whole ? Buffer.concat(kept) : undefined,
      payloadLength,
      payloadSha256: payloadSha.digest('hex'),
      httpStatusLine: hasHttp ? lines[0] : undefined,
      httpHeaders,
    });
  }
  return records;
}


/** The closed WARC files of a directory (no .open ones), sorted by name. */
export async function warcFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => /\.warc(\.gz)?$/.test(name)).sort().map((name) => join(dir, name));
}

/** Every record of every closed file in `dir`, in file order. */
export async function readWarcDir(dir: string): Promise<ReadRecord[]> {
  const all: ReadRecord[] = [];
  for (const file of await warcFilesIn(dir)) all.push(...(await readWarcFile(file)));
  return all;
}
