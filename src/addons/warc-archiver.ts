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
import type { BodyTap } from '../core/body-tap.js';
import type { ArchiveContext } from '../archive/archive-context.js';
import { DedupIndex } from '../archive/dedup-index.js';
import { ExchangeRecorder } from '../archive/exchange-recorder.js';
import { nowMicros } from '../archive/warc-format.js';
import { DEFAULT_NAME_TEMPLATE } from '../archive/warc-file-name.js';
import { warcOptionsProblems, type WarcArchiverOptions } from '../config/warc-options.js';
import type { WarcRecord } from '../archive/warc-record.js';
import type { RepairResult } from '../archive/warc-repair.js';
import { WarcWriter, type WarcWriterStats } from '../archive/warc-writer.js';
import { WebSocketRecorder, type Direction } from '../archive/websocket-recorder.js';

const { version: getawayVersion } = createRequire(import.meta.url)('../../../package.json') as { version: string };

export type { WarcArchiverOptions } from '../config/warc-options.js';

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
    backlogBytes: options.backlogBytes ?? 256 * 1024 * 1024,
  });
  const dedupSettings = options.dedup === true ? {} : options.dedup === false || options.dedup === undefined ? undefined : options.dedup;
  const dedup = dedupSettings === undefined ? undefined : new DedupIndex(dedupSettings.file ?? join(options.dir, `${prefix}-dedup.jsonl`), dedupSettings.maxEntries ?? 100_000);
  let logger: Logger | undefined;
  let opening: Promise<RepairResult[]> | undefined;
  let revisits = 0;
  const inProgress = new Set<Promise<void>>();

  const context: ArchiveContext = {
    writer,
    version,
    digest,
    spool: { spoolDir: writer.spoolDir, digest, memoryBytes: options.memoryBytes ?? 1024 * 1024, maxBlockBytes: options.maxRecordBytes ?? Number.MAX_SAFE_INTEGER },
    dedup,
    metadata: options.metadata ?? false,
    maxWebSocketMessageBytes: options.maxWebSocketMessageBytes ?? 1024 * 1024,
    track(task: Promise<void>): void {
      const settled = task.catch((err: unknown) => logger?.error({ err }, 'archiving an exchange failed')).finally(() => inProgress.delete(settled));
      inProgress.add(settled);
    },
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
    const requestTap = { data: (chunk: Buffer) => exchange.requestData(chunk), end: () => exchange.requestEnd(), abort: (error: ProxyError) => exchange.requestAbort(error) };
    const responseTap = { data: (chunk: Buffer) => exchange.responseData(chunk), end: () => exchange.responseEnd(), abort: (error: ProxyError) => exchange.responseAbort(error) };
    if (!flow.isUpgrade) {
      flow.tapRequestBody(requestTap);
      flow.tapResponseBody(responseTap);
      return;
    }
    // An upgrade is a WebSocket connection once the origin said 101; a refusal is an exchange like any other.
    const startedMicros = nowMicros();
    let socket: WebSocketRecorder | undefined;
    const accepted = (): WebSocketRecorder | undefined => {
      if (socket === undefined && flow.receivedResponse?.status === 101) socket = new WebSocketRecorder(flow, context, startedMicros);
      return socket;
    };
    const switching = (direction: Direction, otherwise: typeof requestTap): BodyTap => ({
      data: (chunk) => (accepted() !== undefined ? socket!.data(direction, chunk) : otherwise.data(chunk)),
      end: () => (accepted() !== undefined ? socket!.end(direction) : otherwise.end()),
      abort: (error) => (accepted() !== undefined ? socket!.abort(direction, error) : otherwise.abort(error)),
    });
    flow.tapRequestBody(switching('client', requestTap));
    flow.tapResponseBody(switching('server', responseTap));
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
      // Exchanges whose records are still on their way to the writer go in before the file is closed.
      while (inProgress.size > 0) await Promise.all(inProgress);
      await writer.close();
      await dedup?.flush();
    },
  };
}
