/**
 * The text of WARC records (ISO 28500; WARC/1.1 and 1.0): header blocks, dates, record ids, digests, and the HTTP
 * message heads that response and request blocks begin with. Pure: takes values, returns bytes.
 *
 * Written here rather than through warcio's WARCRecord/WARCSerializer because an archive of what a proxy relayed
 * needs what those do not give: the HTTP head exactly as exchanged (warcio rebuilds it from a header map), and a
 * body fed chunk by chunk from a tap while the proxy streams it, its digests computed with node:crypto and spilled
 * to disk with back-pressure (record-spool.ts). Reading, indexing and the tests use warcio.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import base32Encode from 'base32-encode';

export type WarcVersion = '1.1' | '1.0';
export type WarcDigestAlgorithm = 'sha1' | 'sha256';
export type WarcRecordType = 'warcinfo' | 'request' | 'response' | 'revisit' | 'metadata' | 'resource';
/** ISO 28500 §5.13: why a block holds less than what was exchanged. */
export type WarcTruncation = 'length' | 'time' | 'disconnect' | 'unspecified';

export type WarcField = readonly [name: string, value: string];

const CRLF = '\r\n';

/** Epoch microseconds now: WARC/1.1 dates carry them (§5.4), Date.now() alone has only milliseconds. */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** WARC-Date: W3C-ISO8601 in UTC, with microseconds for 1.1 and whole seconds for 1.0 (which allows no fraction). */
export function formatWarcDate(epochMicros: number, version: WarcVersion): string {
  const iso = new Date(Math.floor(epochMicros / 1000)).toISOString(); // 2026-12-02T20:54:21.123Z
  const seconds = iso.slice(0, 19);
  if (version === '1.0') return `${seconds}Z`;
  return `${seconds}.${String(epochMicros % 1_000_000).padStart(6, '0')}Z`;
}

export function newRecordId(): string {
  return `<urn:uuid:${randomUUID()}>`;
}

export function createDigest(algorithm: WarcDigestAlgorithm): Hash {
  return createHash(algorithm);
}

/**
 * The labelled digest value: sha1 in base32 (RFC 4648), the form Heritrix, wget, warcprox and pywb's indexes use;
 * sha256 in hex, the form warcio.js and browsertrix write.
 */
export function formatDigest(algorithm: WarcDigestAlgorithm, digest: Buffer): string {
  return algorithm === 'sha1' ? `sha1:${base32Encode(digest, 'RFC4648')}` : `sha256:${digest.toString('hex')}`;
}

/** A WARC header value may not contain CR or LF (it would end the field); anything else passes as UTF-8. */
function fieldValue(value: string): string {
  return /[\r\n]/.test(value) ? value.replace(/[\r\n]+/g, ' ') : value;
}

/** The version line, the fields in order, and the blank line that ends the header (§4). */
export function formatWarcHeader(version: WarcVersion, fields: readonly WarcField[]): Buffer {
  let text = `WARC/${version}${CRLF}`;
  for (const [name, value] of fields) text += `${name}: ${fieldValue(value)}${CRLF}`;
  return Buffer.from(text + CRLF, 'utf8');
}

/** application/warc-fields (§5.3): the body of warcinfo and metadata records. */
export function formatWarcFields(fields: readonly WarcField[]): Buffer {
  let text = '';
  for (const [name, value] of fields) text += `${name}: ${fieldValue(value)}${CRLF}`;
  return Buffer.from(text, 'utf8');
}

/** Header bytes are latin1 on the wire (Node decodes them so); writing them back as latin1 gives the same bytes. */
function formatHttpFields(raw: readonly string[], skip: (name: string) => boolean): string {
  let text = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (skip(name)) continue;
    text += `${name}: ${raw[i + 1]!}${CRLF}`;
  }
  return text;
}

/**
 * Transfer-Encoding is left out of archived heads: bodies are stored with their transfer coding removed (Node's
 * parser decodes chunking), and a head still saying "chunked" over a decoded body is the mismatch replay tools
 * trip on (pywb#584; other writers either keep the chunked bytes or drop the field, never both halves). Every
 * other field stays as exchanged, in order, case and repeats.
 */
const isTransferEncoding = (name: string): boolean => name.length === 17 && name.toLowerCase() === 'transfer-encoding';

export interface HttpResponseHead {
  readonly httpVersion: string;
  readonly status: number;
  readonly reason: string;
  /** Node's flat rawHeaders form. */
  readonly rawHeaders: readonly string[];
}

export function formatResponseHead(head: HttpResponseHead): Buffer {
  const reason = head.reason === '' ? '' : ` ${head.reason}`;
  return Buffer.from(`HTTP/${head.httpVersion} ${head.status}${reason}${CRLF}${formatHttpFields(head.rawHeaders, isTransferEncoding)}${CRLF}`, 'latin1');
}

export interface HttpRequestHead {
  readonly method: string;
  /** Origin-form path and query, as sent to the origin. */
  readonly path: string;
  readonly rawHeaders: readonly string[];
}

/** The request as getaway sent it to the origin: origin-form, HTTP/1.1 (what Node's client speaks). */
export function formatRequestHead(head: HttpRequestHead): Buffer {
  return Buffer.from(`${head.method} ${head.path} HTTP/1.1${CRLF}${formatHttpFields(head.rawHeaders, isTransferEncoding)}${CRLF}`, 'latin1');
}

/** What ends every record's block (§4): two CRLFs. */
export const RECORD_END = Buffer.from(CRLF + CRLF, 'latin1');

/** WARC-Profile for revisits of a payload seen before (§6.7.2). */
export function identicalPayloadProfile(version: WarcVersion): string {
  return `http://netpreserve.org/warc/${version}/revisit/identical-payload-digest`;
}
