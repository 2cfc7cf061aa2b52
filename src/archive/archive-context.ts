/** What every recorder of one archiver shares: the writer, the format settings, the dedup index. */
import type { HttpFlow } from '../core/flow.js';
import type { DedupIndex } from './dedup-index.js';
import type { RecordSpoolOptions } from './record-spool.js';
import type { WarcDigestAlgorithm, WarcVersion } from './warc-format.js';
import type { WarcRecord } from './warc-record.js';
import type { WarcWriter } from './warc-writer.js';

export interface ArchiveContext {
  readonly writer: WarcWriter;
  readonly version: WarcVersion;
  readonly digest: WarcDigestAlgorithm;
  readonly spool: RecordSpoolOptions;
  readonly dedup: DedupIndex | undefined;
  /** Whether each exchange also gets a metadata record. */
  readonly metadata: boolean;
  /** The most bytes of one WebSocket message kept in the log. */
  readonly maxWebSocketMessageBytes: number;
  /** Keeps a record-writing task that nobody awaits, so that closing waits for it. Never rejects. */
  track(task: Promise<void>): void;
  /** Writes one exchange's records; false (logged and counted) when they were dropped. Never rejects. */
  write(records: readonly WarcRecord[], flow: HttpFlow, isRevisit?: boolean): Promise<boolean>;
}
