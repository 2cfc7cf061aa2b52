/**
 * The WARC archiver's options and their check, apart from the archiver itself so that reading a config file or
 * the flags does not load the archive code (a proxy that does not archive never loads it).
 */
import { templateProblem, DEFAULT_NAME_TEMPLATE } from '../archive/warc-file-name.js';
import type { WarcDigestAlgorithm, WarcVersion } from '../archive/warc-format.js';

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
  /** Queued bytes past which archiving slows the traffic down rather than letting the backlog grow. Default 256 MiB (on disk in .spool; memory holds at most memoryBytes per record). */
  backlogBytes?: number;
  /** The longest WebSocket message kept whole in the log. Default 1 MiB. */
  maxWebSocketMessageBytes?: number;
}

/** Every key of WarcArchiverOptions, for the config file's check of unknown keys. */
export const WARC_OPTION_KEYS = [
  'dir', 'prefix', 'nameTemplate', 'rotateBytes', 'rotateAgeMs', 'gzip', 'gzipLevel', 'warcVersion', 'digest', 'info',
  'maxRecordBytes', 'metadata', 'dedup', 'required', 'memoryBytes', 'backlogBytes', 'maxWebSocketMessageBytes',
] as const satisfies ReadonlyArray<keyof WarcArchiverOptions>;

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

