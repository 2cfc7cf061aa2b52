/**
 * Finds where the complete records of a WARC file end, so a file left open by a process that died mid-write
 * (kill -9, a crash, power loss after the page cache reached the disk) can be cut back to them and closed. Every
 * record before the cut stays readable; the partial one is dropped.
 *
 * Hand-written because no reader says "the file is good up to byte N": warcio reads what it can and a truncated
 * last gzip member reads as a short record. Here a record counts only when its whole block and the CRLFCRLF after
 * it are present and, in .warc.gz, its gzip member ends with a trailer whose CRC-32 and length match.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { createInflateRaw, crc32 } from 'node:zlib';

const HEADER_LIMIT_BYTES = 1 << 20;
const READ_BYTES = 1 << 20;
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Follows a stream of uncompressed WARC records and says where the last complete one ended. It checks the frame
 * (version line, Content-Length, the block, CRLFCRLF), not the digests.
 */
export class RecordBoundaryScanner {
  /** Bytes fed, up to the end of the last complete record. */
  completeOffset = 0;
  records = 0;
  /** The fields of the first record's block when it is a warcinfo (who wrote the file). */
  firstInfo: Map<string, string> | undefined;
  /** Set when the bytes cannot be WARC: nothing after completeOffset is trusted. */
  broken: string | undefined;
  #offset = 0;
  #header: Buffer[] = [];
  #headerLength = 0;
  /** Bytes of the current record's block and trailing CRLFCRLF still to come; -1 while reading a header. */
  #remaining = -1;
  #trailer: Buffer[] = [];
  #blockStart: Buffer[] | undefined;
  #blockStartLength = 0;

  get atBoundary(): boolean {
    return this.#remaining === -1 && this.#headerLength === 0;
  }

  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.broken === undefined) {
      if (this.#remaining === -1) at = this.#readHeader(chunk, at);
      else at = this.#readBlock(chunk, at);
    }
    this.#offset += chunk.length;
  }

  #readHeader(chunk: Buffer, at: number): number {
    this.#header.push(chunk.subarray(at));
    this.#headerLength += chunk.length - at;
    const header = Buffer.concat(this.#header);
    const end = header.indexOf(HEADER_END);
    if (end === -1) {
      if (this.#headerLength > HEADER_LIMIT_BYTES) this.broken = 'a record header longer than 1 MiB';
      this.#header = [header];
      return chunk.length;
    }
    const text = header.subarray(0, end).toString('utf8');
    const lines = text.split('\r\n');
    if (!/^WARC\/\d\.\d+$/.test(lines[0] ?? '')) {
      this.broken = `no WARC version line at byte ${this.completeOffset}`;
      return chunk.length;
    }
    const lengthLine = lines.find((line) => /^content-length:/i.test(line));
    const length = lengthLine === undefined ? NaN : Number(lengthLine.slice(lengthLine.indexOf(':') + 1).trim());
    if (!Number.isSafeInteger(length) || length < 0) {
      this.broken = `a record without a valid Content-Length at byte ${this.completeOffset}`;
      return chunk.length;
    }
    const isInfo = this.records === 0 && lines.some((line) => /^warc-type:\s*warcinfo\s*$/i.test(line));
    this.#blockStart = isInfo ? [] : undefined;
    this.#blockStartLength = 0;
    const used = end + 4 - (this.#headerLength - (chunk.length - at));
    this.#header = [];
    this.#headerLength = 0;
    this.#remaining = length + 4;
    return at + used;
  }

  #readBlock(chunk: Buffer, at: number): number {
    const take = Math.min(this.#remaining, chunk.length - at);
    const piece = chunk.subarray(at, at + take);
    // Only the last four bytes matter for the frame; the warcinfo's block is kept to learn who wrote the file.
    if (this.#blockStart !== undefined && this.#blockStartLength < 64 * 1024) {
      this.#blockStart.push(piece);
      this.#blockStartLength += piece.length;
    }
    this.#trailer.push(piece);
    if (this.#trailer.length > 8) this.#trailer = [Buffer.concat(this.#trailer).subarray(-4)];
    this.#remaining -= take;
    if (this.#remaining === 0) {
      const tail = Buffer.concat(this.#trailer).subarray(-4);
      this.#trailer = [];
      if (!tail.equals(HEADER_END)) {
        this.broken = `record ${this.records + 1} does not end with CRLFCRLF`;
        return at + take;
      }
      if (this.#blockStart !== undefined) this.firstInfo = parseFields(Buffer.concat(this.#blockStart));
      this.#blockStart = undefined;
      this.records += 1;
      this.#remaining = -1;
      this.completeOffset = this.#offset + at + take;
    }
    return at + take;
  }
}

function parseFields(block: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of block.toString('utf8').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return fields;
}

export interface WarcScan {
  /** File offset just past the last complete record. */
  completeBytes: number;
  records: number;
  fileBytes: number;
  /** Fields of the leading warcinfo record, when it is complete. */
  info: Map<string, string> | undefined;
  /** What stopped the scan before the end of the file, if anything. */
  problem: string | undefined;
}

async function scanPlain(file: FileHandle, size: number): Promise<WarcScan> {
  const scanner = new RecordBoundaryScanner();
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  for (let position = 0; position < size && scanner.broken === undefined; ) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(READ_BYTES, size - position), position);
    if (bytesRead === 0) break;
    scanner.feed(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  const problem = scanner.broken ?? (scanner.completeOffset < size ? `a partial record after byte ${scanner.completeOffset}` : undefined);
  return { completeBytes: scanner.completeOffset, records: scanner.records, fileBytes: size, info: scanner.firstInfo, problem };
}

/** The length of a gzip member's header (RFC 1952 §2.3), or undefined if `bytes` does not start one. */
function gzipHeaderLength(bytes: Buffer): number | undefined {
  if (bytes.length < 10 || bytes[0] !== 0x1f || bytes[1] !== 0x8b || bytes[2] !== 8) return undefined;
  const flags = bytes[3]!;
  let at = 10;
  if (flags & 4) {
    if (bytes.length < at + 2) return undefined;
    at += 2 + bytes.readUInt16LE(at);
  }
  for (const flag of [8, 16]) {
    if (flags & flag) {
      const zero = bytes.indexOf(0, at);
      if (zero === -1) return undefined;
      at = zero + 1;
    }
  }
  if (flags & 2) at += 2;
  return at <= bytes.length ? at : undefined;
}

interface MemberScan {
  /** Bytes of the member, header to trailer; undefined when it is incomplete or corrupt. */
  length: number | undefined;
}

/** Inflates one gzip member at `start`, feeding what it holds to the scanner. */
async function scanMember(file: FileHandle, start: number, size: number, scanner: RecordBoundaryScanner): Promise<MemberScan> {
  const head = Buffer.alloc(Math.min(64 * 1024, size - start));
  await file.read(head, 0, head.length, start);
  const headerLength = gzipHeaderLength(head);
  if (headerLength === undefined) return { length: undefined };
  const inflate = createInflateRaw();
  let crc = 0;
  let inflated = 0;
  let ended = false;
  inflate.on('data', (chunk: Buffer) => {
    crc = crc32(chunk, crc);
    inflated += chunk.length;
    scanner.feed(chunk);
  });
  const finished = new Promise<boolean>((resolve) => {
    inflate.once('end', () => {
      ended = true;
      resolve(true);
    });
    inflate.once('error', () => resolve(false));
  });
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  let position = start + headerLength;
  let failed = false;
  void finished.then((ok) => {
    failed = !ok;
  });
  while (!ended && !failed && position < size && scanner.broken === undefined) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(READ_BYTES, size - position), position);
    if (bytesRead === 0) break;
    position += bytesRead;
    const more = inflate.write(Buffer.from(buffer.subarray(0, bytesRead)));
    if (!more) await Promise.race([new Promise((resolve) => inflate.once('drain', resolve)), finished]);
  }
  if (!ended) inflate.end();
  if (!(await finished)) return { length: undefined };
  const deflateEnd = start + headerLength + inflate.bytesWritten;
  if (deflateEnd + 8 > size) return { length: undefined };
  const trailer = Buffer.alloc(8);
  await file.read(trailer, 0, 8, deflateEnd);
  if (trailer.readUInt32LE(0) !== crc >>> 0 || trailer.readUInt32LE(4) !== inflated % 2 ** 32) return { length: undefined };
  return { length: deflateEnd + 8 - start };
}

async function scanGzip(file: FileHandle, size: number): Promise<WarcScan> {
  const scanner = new RecordBoundaryScanner();
  let completeBytes = 0;
  let records = 0;
  let problem: string | undefined;
  while (completeBytes < size) {
    const member = await scanMember(file, completeBytes, size, scanner);
    if (member.length === undefined || scanner.broken !== undefined || !scanner.atBoundary) {
      problem = scanner.broken ?? `an incomplete gzip member at byte ${completeBytes}`;
      break;
    }
    completeBytes += member.length;
    records = scanner.records;
  }
  return { completeBytes, records, fileBytes: size, info: scanner.records > 0 ? scanner.firstInfo : undefined, problem };
}

/** Where a WARC file's complete records end. `.gz` names are read as one gzip member per record (or several). */
export async function scanWarcFile(path: string): Promise<WarcScan> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    return /\.gz(\.open)?$/.test(path) ? await scanGzip(file, size) : await scanPlain(file, size);
  } finally {
    await file.close();
  }
}

export interface RepairResult {
  path: string;
  /** The closed file's name, or undefined when nothing complete was in it and it was removed. */
  closedAs: string | undefined;
  records: number;
  /** Bytes cut off the end (a partial record). */
  cutBytes: number;
}

/** Cuts an .open file back to its last complete record and renames it without the suffix (or removes it if empty). */
export async function repairOpenFile(path: string, scan?: WarcScan): Promise<RepairResult> {
  const result = scan ?? (await scanWarcFile(path));
  const cutBytes = result.fileBytes - result.completeBytes;
  if (result.records === 0) {
    await unlink(path);
    return { path, closedAs: undefined, records: 0, cutBytes };
  }
  if (cutBytes > 0) {
    const file = await open(path, 'r+');
    try {
      await file.truncate(result.completeBytes);
      await file.sync();
    } finally {
      await file.close();
    }
  }
  const closedAs = path.replace(/\.open$/, '');
  await rename(path, closedAs);
  return { path, closedAs, records: result.records, cutBytes };
}
