/**
 * The WARC archiver: every HTTP exchange the proxy relays (plain, and decrypted inside intercepted tunnels) is
 * written to WARC files through body taps, so archiving never holds a body in memory nor changes what the client
 * receives. Plain CONNECT tunnels carry ciphertext and are left out (the flow log still records them).
 *
 * @example
 * const archive = warcArchiver({ dir: './warcs', dedup: true });
 * const proxy = createProxy({ addons: [archive] });
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Addon } from '../core/addon.js';
import { ProxyError } from '../core/errors.js';
import type { HttpFlow } from '../core/flow.js';
import type { ArchiveContext } from '../archive/archive-context.js';
import { DedupIndex } from '../archive/dedup-index.js';
import { ExchangeRecorder } from '../archive/exchange-recorder.js';
import { nowMicros, type WarcDigestAlgorithm, type WarcVersion } from '../archive/warc-format.js';
import { DEFAULT_NAME_TEMPLATE, templateProblem } from '../archive/warc-file-name.js';
import type { WarcRecord } from '../archive/warc-record.js';
import type { RepairResult } from '../archive/warc-repair.js';
import { WarcWriter, type WarcWriterStats } from '../archive/warc-writer.js';
import { WebSocketRecorder, type Direction } from '../archive/websocket-recorder.js';

const { version: getawayVersion } = createRequire(import.meta.url)('../../../package.json') as { version: string };

export interface WarcArchiverOptions {
  /** Directory of the WARC files (created if missing). */
  dir: string;
  /** First part of each file name. Default "getaway". */
  prefix?: string;
  /** File name template (warc-file-name.ts): default "{prefix}-{timestamp}-{serial}-{pid}-{host}". */
  nameTemplate?: string;
  /** A file is closed and a new one begun once it holds this many bytes. Default 1 GB (10^9). */
  rotateBytes?: number;
  /** A file is closed once it has been open this long, even if small. Default: no age limit. */
  rotateAgeMs?: number;
  /** One gzip member per record (.warc.gz). Default true. */
  gzip?: boolean;
  /** zlib level 1–9. Default 6. */
  gzipLevel?: number;
  /** Default "1.1". */
  warcVersion?: WarcVersion;
  /** Block and payload digests. Default "sha1" (base32), what replay indexes expect. */
  digest?: WarcDigestAlgorithm;
  /** Extra fields for every warcinfo record (operator, description, ...). */
  info?: Record<string, string>;
  /** Blocks past this many bytes are cut and marked `WARC-Truncated: length`. Default: no limit. */
  maxRecordBytes?: number;
  /** A metadata record per exchange with the flow's facts (client, user, upstream, timings). Default false. */
  metadata?: boolean;
  /**
   * Payloads seen before become revisit records (identical-payload-digest). `true` keeps the index in
   * DIR/getaway-dedup.jsonl with at most 100,000 entries.
   */
  dedup?: boolean | { file?: string; maxEntries?: number };
  /** Refuse traffic (503) while records cannot be written, instead of proxying without archiving. Default false. */
  required?: boolean;
  /** Body bytes per record held in memory before spilling to DIR/.spool. Default 1 MiB. */
  memoryBytes?: number;
  /** Queued bytes past which archiving slows the traffic down rather than letting the backlog grow. Default 64 MiB. */
  backlogBytes?: number;
  /** The longest WebSocket message kept whole in the log. Default 1 MiB. */
  maxWebSocketMessageBytes?: number;
}

/** Every key of WarcArchiverOptions, for the config file's check of unknown keys. */
export const WARC_OPTION_KEYS = [
  'dir', 'prefix', 'nameTemplate', 'rotateBytes', 'rotateAgeMs', 'gzip', 'gzipLevel', 'warcVersion', 'digest', 'info',
  'maxRecordBytes', 'metadata', 'dedup', 'required', 'memoryBytes', 'backlogBytes', 'maxWebSocketMessageBytes',
] as const satisfies ReadonlyArray<keyof WarcArchiverOptions>;

export interface WarcArchiverStats extends WarcWriterStats {
  revisits: number;
  dedupEntries: number;
}

export interface WarcArchiver extends Addon {
  /**
   * Prepares the directory (repairing files left open by a process that died) and loads the dedup index. Called by
   * the `running` hook if not before; call it first to learn at start that the directory cannot be written.
   */
  open(): Promise<RepairResult[]>;
  /** Closes the current file; the next record starts a new one. */
  rotate(): Promise<void>;
  stats(): WarcArchiverStats;
  /** Why records are being dropped right now, if they are. */
  readonly failure: Error | undefined;
}

/** The problems with a set of archiver options, in words for a person (empty when they are fine). */
export function warcOptionsProblems(options: WarcArchiverOptions): string[] {
  const problems: string[] = [];
  if (typeof options.dir !== 'string' || options.dir === '') problems.push('warc.dir: a directory is required');
  const template = templateProblem(options.nameTemplate ?? DEFAULT_NAME_TEMPLATE);
  if (template !== undefined) problems.push(`warc.nameTemplate: ${template}`);
  if (options.prefix !== undefined && !/^[A-Za-z0-9._-]+$/.test(options.prefix)) problems.push('warc.prefix: letters, digits, ".", "_" and "-" only');
  if (options.gzipLevel !== undefined && !(Number.isInteger(options.gzipLevel) && options.gzipLevel >= 1 && options.gzipLevel <= 9)) problems.push('warc.gzipLevel: 1 to 9');
  for (const key of ['rotateBytes', 'rotateAgeMs', 'maxRecordBytes', 'memoryBytes', 'backlogBytes', 'maxWebSocketMessageBytes'] as const) {
    const value = options[key];
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) problems.push(`warc.${key}: a positive whole number`);
  }
  if (options.warcVersion !== undefined && options.warcVersion !== '1.1' && options.warcVersion !== '1.0') problems.push('warc.warcVersion: "1.1" or "1.0"');
  if (options.digest !== undefined && options.digest !== 'sha1' && options.digest !== 'sha256') problems.push('warc.digest: "sha1" or "sha256"');
  if (options.info !== undefined && (typeof options.info !== 'object' || Object.values(options.info).some((value) => typeof value !== 'string'))) problems.push('warc.info: a mapping of names to strings');
  const dedup = options.dedup;
  if (dedup !== undefined && typeof dedup !== 'boolean') {
    if (typeof dedup !== 'object' || dedup === null) problems.push('warc.dedup: true, or { file, maxEntries }');
    else if (dedup.maxEntries !== undefined && !(Number.isSafeInteger(dedup.maxEntries) && dedup.maxEntries > 0)) problems.push('warc.dedup.maxEntries: a positive whole number');
  }
  return problems;
}

export function warcArchiver(options: WarcArchiverOptions): WarcArchiver {
  const problems = warcOptionsProblems(options);
  if (problems.length > 0) throw new TypeError(problems.join('; '));
  const version = options.warcVersion ?? '1.1';
  const digest = options.digest ?? 'sha1';
  const prefix = options.prefix ?? 'getaway';
  const writer = new WarcWriter({
    dir: options.dir,
    prefix,
    nameTemplate: options.nameTemplate ?? DEFAULT_NAME_TEMPLATE,
    rotateBytes: options.rotateBytes ?? 1_000_000_000,
    rotateAgeMs: options.rotateAgeMs,
    gzip: options.gzip ?? true,
    gzipLevel: options.gzipLevel ?? 6,
    version,
    digest,
    info: Object.entries(options.info ?? {}),
    software: `getaway/${getawayVersion}`,
    backlogBytes: options.backlogBytes ?? 64 * 1024 * 1024,
  });
  const dedupSettings = options.dedup === true ? {} : options.dedup === false || options.dedup === undefined ? undefined : options.dedup;
  const dedup = dedupSettings === undefined ? undefined : new DedupIndex(dedupSettings.file ?? join(options.dir, `${prefix}-dedup.jsonl`), dedupSettings.maxEntries ?? 100_000);
  let logger: Logger | undefined;
  let opening: Promise<RepairResult[]> | undefined;
  let revisits = 0;

  const context: ArchiveContext = {
    writer,
    version,
    digest,
    spool: { spoolDir: writer.spoolDir, digest, memoryBytes: options.memoryBytes ?? 1024 * 1024, maxBlockBytes: options.maxRecordBytes ?? Number.MAX_SAFE_INTEGER },
    dedup,
    metadata: options.metadata ?? false,
    maxWebSocketMessageBytes: options.maxWebSocketMessageBytes ?? 1024 * 1024,
    async write(records: readonly WarcRecord[], flow: HttpFlow, isRevisit = false): Promise<boolean> {
      try {
        await writer.write(records);
        if (isRevisit) revisits += 1;
        return true;
      } catch (err) {
        logger?.debug({ err, flowId: flow.id }, 'WARC records dropped');
        return false;
      }
    },
  };
  writer.onFailure((err) => logger?.error({ err, dir: options.dir }, `WARC archiving is failing, records are dropped until it recovers: ${err.message}`));

  const open = (): Promise<RepairResult[]> => {
    opening ??= (async () => {
      const repaired = await writer.open();
      await dedup?.load();
      return repaired;
    })();
    return opening;
  };

  function tapExchange(flow: HttpFlow): void {
    const exchange = new ExchangeRecorder(flow, context);
    if (!flow.isUpgrade) {
      flow.tapRequestBody({ data: (chunk) => exchange.requestData(chunk), end: () => exchange.requestEnd(), abort: (error) => exchange.requestAbort(error) });
      flow.tapResponseBody({ data: (chunk) => exchange.responseData(chunk), end: () => exchange.responseEnd(), abort: (error) => exchange.responseAbort(error) });
      return;
    }
    // An upgrade is a WebSocket connection once the origin said 101; a refusal is an exchange like any other.
    const startedMicros = nowMicros();
    let socket: WebSocketRecorder | undefined;
    const accepted = (): WebSocketRecorder | undefined => {
      if (socket === undefined && flow.receivedResponse?.status === 101) socket = new WebSocketRecorder(flow, context, startedMicros);
      return socket;
    };
    const tap = (direction: Direction, onData: (chunk: Buffer) => Promise<void> | undefined, onEnd: () => void | Promise<void>, onAbort: (error: ProxyError) => void) => ({
      data: (chunk: Buffer) => (accepted() !== undefined ? socket!.data(direction, chunk) : onData(chunk)),
      end: () => (accepted() !== undefined ? socket!.end(direction) : onEnd()),
      abort: (error: ProxyError) => (accepted() !== undefined ? socket!.abort(direction, error) : onAbort(error)),
    });
    flow.tapRequestBody(tap('client', (chunk) => exchange.requestData(chunk), () => exchange.requestEnd(), (error) => exchange.requestAbort(error)));
    flow.tapResponseBody(tap('server', (chunk) => exchange.responseData(chunk), () => exchange.responseEnd(), (error) => exchange.responseAbort(error)));
  }

  return {
    name: 'warc-archiver',
    open,
    rotate: () => writer.rotate(),
    get failure() {
      return writer.failure;
    },
    stats: () => ({ ...writer.stats, revisits, dedupEntries: dedup?.size ?? 0 }),
    async running(addonContext) {
      logger = addonContext.logger;
      const repaired = await open();
      for (const result of repaired) {
        logger.warn(
          { file: result.path, closedAs: result.closedAs, records: result.records, cutBytes: result.cutBytes },
          result.closedAs === undefined ? 'removed a WARC file left open with no complete record' : `closed a WARC file left open: ${result.records} complete records kept, ${result.cutBytes} bytes of a partial one cut`,
        );
      }
    },
    requestHeaders(flow) {
      const failure = writer.failure;
      if (failure !== undefined && options.required === true) {
        throw new ProxyError('proxy_internal_error', `archiving is required and WARC files cannot be written: ${failure.message}`, { status: 503 });
      }
      tapExchange(flow);
    },
    async done() {
      await writer.close();
      await dedup?.flush();
    },
  };
}
