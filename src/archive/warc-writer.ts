/**
 * Writes records into WARC files in one directory: each file begins with a warcinfo record, carries a ".open"
 * suffix while it is written, and is renamed when complete (rotation by size or age, close). With gzip each record
 * is its own gzip member, so a reader can seek to any record (§D.2 of ISO 28500). Records of one exchange are
 * written together, one exchange at a time, in the order they arrive.
 *
 * A write that fails (a full disk, a file-size limit, a directory gone) is cut back out of the file so the file
 * stays valid, and the writer reports itself failing: records are dropped and counted until the disk has room
 * again (checked every few seconds), when a new file is started.
 */
import { mkdir, open, readdir, rename, rm, stat, statfs, access, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { deflateRaw as deflateRawCallback, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { bufferBlock, recordFromBuffer, type WarcRecord } from './warc-record.js';
import { formatWarcDate, formatWarcFields, newRecordId, nowMicros, RECORD_END, type WarcDigestAlgorithm, type WarcField, type WarcVersion } from './warc-format.js';
import { renderFileName } from './warc-file-name.js';
import { repairOpenFile, scanWarcFile, type RepairResult } from './warc-repair.js';
import { GzipMemberEncoder, parallelMember, storedMember } from './gzip-members.js';

const deflateRawBuffer = promisify(deflateRawCallback);
/** Bytes of a payload deflated to judge whether compressing the rest is worth it. */
const PROBE_BYTES = 64 * 1024;
/** A sample that deflates to more than this share of its size is stored, not compressed. */
const INCOMPRESSIBLE_RATIO = 0.97;

/** Groups whose records are all smaller than this are gathered in memory and written in batches; larger records stream. */
const SMALL_RECORD_BYTES = 256 * 1024;
const RECOVERY_CHECK_MS = 5_000;
/** An .open file without a complete warcinfo is left alone this long (it may be another process's, just created). */
const ORPHAN_AGE_MS = 60_000;
/** Free space the disk must show before a failing writer tries again. */
const RECOVERY_FREE_BYTES = 16 * 1024 * 1024;

export interface WarcWriterOptions {
  dir: string;
  prefix: string;
  nameTemplate: string;
  rotateBytes: number;
  rotateAgeMs: number | undefined;
  gzip: boolean;
  gzipLevel: number;
  version: WarcVersion;
  digest: WarcDigestAlgorithm;
  /** Written into every warcinfo after getaway's own fields. */
  info: readonly WarcField[];
  software: string;
  /** Bytes of queued records past which taps are held (room()): a disk slower than the network slows the traffic. */
  backlogBytes: number;
}

export interface WarcWriterStats {
  records: number;
  bytes: number;
  filesClosed: number;
  writeErrors: number;
  recordsDropped: number;
  failing: boolean;
}

interface OpenFile {
  handle: FileHandle;
  openPath: string;
  name: string;
  position: number;
  openedAt: number;
  /** Records after the warcinfo. */
  records: number;
}

export class WarcFailure extends Error {}

/** Appends `buffers` at the file's position, however many writes that takes. */
async function writeAll(file: OpenFile, buffers: readonly Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const { bytesWritten } = await file.handle.writev(rest as Buffer[], file.position);
    if (bytesWritten === 0) throw new Error('the file took no bytes');
    file.position += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < rest.length && skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = i < rest.length ? [rest[i]!.subarray(skip), ...rest.slice(i + 1)] : [];
  }
}

/** One exchange's records, waiting for the writer. */
interface PendingGroup {
  readonly records: readonly WarcRecord[];
  readonly bytes: number;
  resolve(): void;
  reject(error: Error): void;
}

/** Records smaller than this (most GET request records) are stored in their gzip member, not compressed (storedMember). */
const STORED_BYTES = 1024;
/** Records smaller than this are gzipped synchronously (see #member). */
const SYNC_GZIP_BYTES = 16 * 1024;
/**
 * What the writer takes from its queue at once. Small records are gzipped synchronously, so a batch is also how
 * long the event loop is held: 64 exchanges of 1 KiB are about 5 ms (8 MiB batches held it for 200 ms and more,
 * and wrk saw timeouts).
 */
const BATCH_BYTES = 1024 * 1024;
const BATCH_GROUPS = 64;
/** Exchanges queued for the writer past which bodies wait (see #hasRoom). */
const MAX_QUEUED_GROUPS = 1024;

export class WarcWriter {
  readonly #options: WarcWriterOptions;
  readonly #host = hostname();
  #file: OpenFile | undefined;
  #serial = 0;
  #queue: Promise<void> = Promise.resolve();
  #failure: Error | undefined;
  #recoveryTimer: NodeJS.Timeout | undefined;
  #ageTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #queuedBytes = 0;
  #queuedGroups = 0;
  #encoderAtLevel: GzipMemberEncoder | undefined;
  #storedEncoder: GzipMemberEncoder | undefined;
  #pending: PendingGroup[] = [];
  #draining = false;
  #roomWaiters: Array<() => void> = [];
  #onFailure: ((error: Error) => void) | undefined;
  readonly #counts: Omit<WarcWriterStats, 'failing'> = { records: 0, bytes: 0, filesClosed: 0, writeErrors: 0, recordsDropped: 0 };

  get stats(): WarcWriterStats {
    return { ...this.#counts, failing: this.#failure !== undefined };
  }

  constructor(options: WarcWriterOptions) {
    this.#options = options;
  }

  get spoolDir(): string {
    return join(this.#options.dir, '.spool');
  }

  /** The error that made the writer drop records, while it does. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Called when writing fails (first failure after a healthy spell); for logs. */
  onFailure(listener: (error: Error) => void): void {
    this.#onFailure = listener;
  }

  /**
   * Makes the directory ready: creates it (and .spool), checks it is writable, closes files that earlier processes on
   * this host left open (cut back to their last complete record). Throws with the reason when it cannot.
   */
  async open(): Promise<RepairResult[]> {
    const { dir } = this.#options;
    try {
      await mkdir(this.spoolDir, { recursive: true });
      await access(dir, constants.W_OK);
    } catch (err) {
      throw new WarcFailure(`cannot write WARC files to ${dir}: ${(err as Error).message}`, { cause: err });
    }
    // A disk that is full already is as clear a reason not to start as a directory that cannot be written.
    const space = await statfs(dir);
    const free = space.bavail * space.bsize;
    if (free < RECOVERY_FREE_BYTES) throw new WarcFailure(`cannot write WARC files to ${dir}: only ${free} bytes free on its disk (at least ${RECOVERY_FREE_BYTES} needed)`);
    // Spill files of a process that died: their records were never written, and nobody else reads them.
    for (const entry of await readdir(this.spoolDir)) {
      if (entry.endsWith('.spool') && (await this.#ownedByNobody(join(this.spoolDir, entry)))) await rm(join(this.spoolDir, entry), { force: true });
    }
    const repaired: RepairResult[] = [];
    for (const entry of await readdir(dir)) {
      if (!entry.startsWith(this.#options.prefix) || !entry.endsWith('.open')) continue;
      const path = join(dir, entry);
      try {
        const scan = await scanWarcFile(path);
        if (!this.#isAbandoned(scan.info, (await stat(path)).mtimeMs)) continue;
        repaired.push(await repairOpenFile(path, scan));
      } catch (err) {
        // Cluster workers start together and may race to close the same file: whoever got there first closed it.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    if (this.#options.rotateAgeMs !== undefined) {
      const ageMs = this.#options.rotateAgeMs;
      this.#ageTimer = setInterval(() => {
        if (this.#file !== undefined && Date.now() - this.#file.openedAt >= ageMs) this.#enqueue(() => this.#closeFile());
      }, Math.min(ageMs, 60_000));
      this.#ageTimer.unref();
    }
    return repaired;
  }

  /** Spill files are named by uuid, not owner; one left from before this process started is abandoned. */
  async #ownedByNobody(path: string): Promise<boolean> {
    try {
      const handle = await open(path, 'r');
      const { mtimeMs } = await handle.stat();
      await handle.close();
      return mtimeMs < performance.timeOrigin;
    } catch {
      return false;
    }
  }

  /**
   * Whether an .open file belongs to no running writer: written on this host (its warcinfo says) by a process that
   * is gone. Files of other hosts (a shared directory) are theirs to repair.
   */
  #isAbandoned(info: Map<string, string> | undefined, modifiedMs: number): boolean {
    // Not even a whole warcinfo: nothing in it to keep, and no owner named. A file that new may be another worker's
    // first write (workers start and rotate while others run), so only an old one is taken for abandoned.
    if (info === undefined) return Date.now() - modifiedMs > ORPHAN_AGE_MS;
    if (info.get('hostname') !== this.#host) return false;
    const pid = Number(info.get('getaway-pid'));
    // Our own pid: a previous incarnation (containers restart as pid 1), since open() runs before this writer writes.
    if (!Number.isInteger(pid) || pid === process.pid) return true;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }

  /**
   * Queues the records of one exchange; resolves when they are in the file (not fsynced: the page cache survives a
   * killed process). Rejects when they were dropped because writing fails; they are released either way.
   */
  write(records: readonly WarcRecord[]): Promise<void> {
    let bytes = 0;
    for (const record of records) bytes += record.blockLength;
    this.#queuedBytes += bytes;
    this.#queuedGroups += 1;
    const written = new Promise<void>((resolve, reject) => this.#pending.push({ records, bytes, resolve, reject }));
    if (!this.#draining) {
      this.#draining = true;
      void this.#enqueue(() => this.#drain());
    }
    return written.finally(() => {
      this.#queuedBytes -= bytes;
      this.#queuedGroups -= 1;
      if (this.#hasRoom() && this.#roomWaiters.length > 0) {
        const waiters = this.#roomWaiters;
        this.#roomWaiters = [];
        for (const wake of waiters) wake();
      }
    });
  }

  /**
   * Writes what is queued, a batch at a time: the small records of a batch are encoded together (#member) and
   * consecutive small exchanges go out in one write, so many small exchanges cost a few system calls rather than
   * several each; large records stream at their turn, in order.
   */
  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        let take = 0;
        let batchBytes = 0;
        while (take < this.#pending.length && take < BATCH_GROUPS && (take === 0 || batchBytes < BATCH_BYTES)) batchBytes += this.#pending[take++]!.bytes;
        const batch = this.#pending.splice(0, take);
        const gathered = await Promise.all(batch.map((group) => this.#gatherSmall(group.records).catch(() => undefined)));
        const members = await this.#encodeSmall(gathered);
        let run: Array<{ group: PendingGroup; members: readonly Buffer[] }> = [];
        const flushRun = async (): Promise<void> => {
          if (run.length === 0) return;
          const groups = run;
          run = [];
          await this.#writeGroups(
            groups.map(({ group }) => group),
            (file) => writeAll(file, groups.flatMap(({ members }) => members)),
          );
        };
        for (let i = 0; i < batch.length; i += 1) {
          const prepared = members[i];
          if (prepared !== undefined) {
            run.push({ group: batch[i]!, members: prepared });
            continue;
          }
          await flushRun();
          await this.#writeGroups([batch[i]!], async (file) => {
            for (const record of batch[i]!.records) await this.#writeRecord(file, record);
          });
        }
        await flushRun();
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Each record's bytes in memory (head, block, CRLFCRLF); undefined when the group has a large record. */
  async #gatherSmall(records: readonly WarcRecord[]): Promise<Buffer[][] | undefined> {
    if (records.some((record) => record.blockLength >= SMALL_RECORD_BYTES)) return undefined;
    return Promise.all(
      records.map(async (record) => {
        const parts: Buffer[] = [record.header];
        for await (const chunk of record.blocks()) parts.push(chunk);
        parts.push(RECORD_END);
        return parts;
      }),
    );
  }

  /**
   * Turns gathered records into what goes in the file. Gzip members are started in order without waiting on one
   * another (the encoder's stream keeps them apart), then awaited together.
   */
  async #encodeSmall(gathered: ReadonlyArray<Buffer[][] | undefined>): Promise<Array<Buffer[] | undefined>> {
    if (!this.#options.gzip) return gathered.map((group) => group?.flat());
    const levels = await Promise.all(
      gathered.map((group) =>
        group === undefined ? undefined : Promise.all(group.map((parts) => (parts.reduce((n, p) => n + p.length, 0) > PROBE_BYTES ? this.#levelFor(Buffer.concat(parts).subarray(-PROBE_BYTES)) : this.#options.gzipLevel))),
      ),
    );
    const pending = gathered.map((group, g) => (group === undefined ? undefined : group.map((parts, r) => this.#member(parts, levels[g]![r]!))));
    return Promise.all(pending.map(async (members) => (members === undefined ? undefined : (await Promise.all(members)).flat())));
  }

  /**
   * Records under SYNC_GZIP_BYTES are gzipped on the spot: on a 1.1 KB record gzipSync cost 44 µs of CPU and a trip
   * through a long-lived zlib stream 80 µs (`npm run bench:zlib`), most of it the trip. Larger ones go
   * through the long-lived encoder, off the event loop.
   */
  #member(parts: readonly Buffer[], level: number): Buffer[] | Promise<Buffer[]> {
    const length = parts.reduce((n, part) => n + part.length, 0);
    if (length < STORED_BYTES) return storedMember(Buffer.concat(parts, length));
    // chunkSize near the output's size: zlib's default 16 KiB output buffer per call was 5 % of a profile.
    if (length < SYNC_GZIP_BYTES) return [gzipSync(Buffer.concat(parts, length), { level, windowBits: 12, memLevel: 4, chunkSize: Math.max(1024, length >> 1) })];
    return this.#encoder(level).member(parts);
  }

  #encoder(level: number): GzipMemberEncoder {
    if (level === 0) return (this.#storedEncoder ??= new GzipMemberEncoder(0));
    return (this.#encoderAtLevel ??= new GzipMemberEncoder(this.#options.gzipLevel));
  }

  /**
   * Writes whole exchanges with `write`, which appends at `file.position`. A failure cuts them all back out of the
   * file and drops them (counted); either way each group hears how it went and its records are released.
   */
  async #writeGroups(groups: readonly PendingGroup[], write: (file: OpenFile) => Promise<void>): Promise<void> {
    const records = groups.reduce((n, group) => n + group.records.length, 0);
    try {
      if (this.#closed) throw new WarcFailure('the WARC writer is closed');
      if (this.#failure !== undefined) throw this.#failure;
      const file = await this.#currentFile();
      const start = file.position;
      try {
        await write(file);
      } catch (err) {
        await this.#fail(file, start, err as Error);
        throw this.#failure;
      }
      file.records += records;
      this.#counts.records += records;
      this.#counts.bytes += file.position - start;
      if (file.position >= this.#options.rotateBytes) await this.#closeFile();
      for (const group of groups) group.resolve();
    } catch (err) {
      this.#counts.recordsDropped += records;
      for (const group of groups) group.reject(err as Error);
    } finally {
      await Promise.all(groups.flatMap((group) => group.records.map((record) => record.release())));
    }
  }

  /**
   * Both bounds: bytes (a few large records, whose blocks wait on disk) and exchanges (many small ones, each
   * holding its flow and buffers in memory: a byte bound alone let 100,000 of them queue behind a slow writer, and
   * the heap that grew made GC pauses of a second).
   */
  #hasRoom(): boolean {
    return this.#queuedBytes <= this.#options.backlogBytes && this.#queuedGroups <= MAX_QUEUED_GROUPS;
  }

  /** Undefined while the queue is under its bound; else a promise that settles when it is back under. */
  room(): Promise<void> | undefined {
    if (this.#hasRoom()) return undefined;
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** One record, streamed from its block into the file (gzipped pigz-style when gzip is on). */
  async #writeRecord(file: OpenFile, record: WarcRecord): Promise<void> {
    const sink = (chunk: Buffer): Promise<void> => writeAll(file, [chunk]);
    const blocks = record.blocks()[Symbol.asyncIterator]();
    // The start of the block tells whether deflate will gain anything on this payload.
    const peeked: Buffer[] = [record.header];
    let peekedLength = 0;
    while (peekedLength < PROBE_BYTES) {
      const next = await blocks.next();
      if (next.done === true) break;
      peeked.push(next.value);
      peekedLength += next.value.length;
    }
    async function* whole(): AsyncGenerator<Buffer> {
      yield* peeked;
      for (let next = await blocks.next(); next.done !== true; next = await blocks.next()) yield next.value;
      yield RECORD_END;
    }
    if (!this.#options.gzip) {
      for await (const chunk of whole()) await sink(chunk);
      return;
    }
    const level = peekedLength > PROBE_BYTES ? await this.#levelFor(Buffer.concat(peeked).subarray(-PROBE_BYTES)) : this.#options.gzipLevel;
    await parallelMember(whole(), level, sink, { pieceBytes: 1024 * 1024, inFlight: 4 });
  }

  /**
   * The gzip level for a record: the configured one, or 0 (stored blocks, still a valid gzip member) when a sample
   * of the payload does not shrink, as with images, video and bodies already gzip- or brotli-coded. Deflate runs at
   * about 31 MB/s on such bytes on our bench machine (256 MB/s on text; `npm run bench:zlib`), for nothing.
   */
  async #levelFor(sample: Buffer): Promise<number> {
    const squeezed = await deflateRawBuffer(sample, { level: 1 });
    return squeezed.length > sample.length * INCOMPRESSIBLE_RATIO ? 0 : this.#options.gzipLevel;
  }

  async #currentFile(): Promise<OpenFile> {
    if (this.#file !== undefined) return this.#file;
    const extension = this.#options.gzip ? '.warc.gz' : '.warc';
    for (let tries = 0; ; tries += 1) {
      this.#serial += 1;
      const name = renderFileName(this.#options.nameTemplate, { prefix: this.#options.prefix, epochMs: Date.now(), serial: this.#serial, pid: process.pid, host: this.#host }) + extension;
      const openPath = join(this.#options.dir, `${name}.open`);
      let handle: FileHandle;
      try {
        // 'wx': never write into a file that exists, whoever made it.
        handle = await open(openPath, 'wx', 0o644);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST' && tries < 100) continue;
        throw err;
      }
      const file: OpenFile = { handle, openPath, name, position: 0, openedAt: Date.now(), records: 0 };
      try {
        await this.#writeRecord(file, this.#warcinfo(name));
      } catch (err) {
        await handle.close().catch(() => undefined);
        await rm(openPath, { force: true });
        throw err;
      }
      this.#file = file;
      return file;
    }
  }

  #warcinfo(name: string): WarcRecord {
    const { version, digest } = this.#options;
    const fields: WarcField[] = [
      ['software', this.#options.software],
      ['hostname', this.#host],
      ['getaway-pid', String(process.pid)],
      ['format', `WARC File Format ${version}`],
      ['conformsTo', version === '1.1' ? 'https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/' : 'http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf'],
      ...this.#options.info,
    ];
    return recordFromBuffer(
      version,
      [
        ['WARC-Type', 'warcinfo'],
        ['WARC-Record-ID', newRecordId()],
        ['WARC-Date', formatWarcDate(nowMicros(), version)],
        ['WARC-Filename', name],
      ],
      'application/warc-fields',
      bufferBlock(formatWarcFields(fields), digest),
    );
  }

  /**
   * Spilling a body to .spool failed (same disk): the writer is failing as if a record write had, so that
   * `required` refuses traffic and the metrics say so.
   */
  reportSpoolFailure(error: Error): void {
    this.#enterFailure(new WarcFailure(`spooling a record to ${this.spoolDir} failed: ${error.message}`, { cause: error }));
  }

  /** Records that could not be written for a reason found before they reached the writer. */
  countDropped(records: number): void {
    this.#counts.recordsDropped += records;
  }

  /** Cuts the failed record out, closes the file with what it holds, and stops writing until the disk has room. */
  async #fail(file: OpenFile, start: number, error: Error): Promise<void> {
    // A record cut off mid-member leaves its input in the encoder's window: start afresh.
    this.#encoderAtLevel?.close();
    this.#storedEncoder?.close();
    this.#encoderAtLevel = undefined;
    this.#storedEncoder = undefined;
    const failure = new WarcFailure(`writing ${file.name} failed: ${error.message}`, { cause: error });
    await file.handle.truncate(start).catch(() => undefined);
    file.position = start;
    await this.#closeFile().catch(() => undefined);
    this.#enterFailure(failure);
  }

  /** Counts the failure, tells the listener when it starts a failing spell, and watches for the disk to recover. */
  #enterFailure(failure: WarcFailure): void {
    this.#counts.writeErrors += 1;
    const first = this.#failure === undefined;
    this.#failure = failure;
    if (first) this.#onFailure?.(failure);
    this.#watchRecovery();
  }

  #watchRecovery(): void {
    if (this.#recoveryTimer !== undefined) return;
    this.#recoveryTimer = setInterval(() => {
      statfs(this.#options.dir).then(
        (stats) => {
          if (stats.bavail * stats.bsize < RECOVERY_FREE_BYTES) return;
          clearInterval(this.#recoveryTimer);
          this.#recoveryTimer = undefined;
          this.#failure = undefined;
        },
        () => undefined,
      );
    }, RECOVERY_CHECK_MS);
    this.#recoveryTimer.unref();
  }

  /** Finishes the current file: flushed to disk, then renamed without ".open". A file with only its warcinfo goes away. */
  async #closeFile(): Promise<void> {
    const file = this.#file;
    if (file === undefined) return;
    this.#file = undefined;
    const hasRecords = file.records > 0;
    try {
      await file.handle.sync();
    } finally {
      await file.handle.close();
    }
    if (!hasRecords) {
      await rm(file.openPath, { force: true });
      return;
    }
    await rename(file.openPath, join(this.#options.dir, file.name));
    this.#counts.filesClosed += 1;
  }

  /** Rotates now: the next record starts a new file. */
  rotate(): Promise<void> {
    return this.#enqueue(() => this.#closeFile());
  }

  /** Writes what is queued, then closes the current file. Later writes are refused. */
  async close(): Promise<void> {
    clearInterval(this.#ageTimer);
    clearInterval(this.#recoveryTimer);
    await this.#enqueue(async () => {
      this.#closed = true;
      await this.#closeFile();
      this.#encoderAtLevel?.close();
      this.#storedEncoder?.close();
    });
  }
}
