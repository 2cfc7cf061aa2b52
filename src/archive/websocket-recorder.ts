/**
 * Records a WebSocket connection (an upgrade the origin accepted with 101): the handshake as a response and a
 * request record with heads only, then, once the connection is over, a `resource` record whose block is the
 * message log as JSON lines, target ws:// or wss://, `WARC-Resource-Type: websocket`, linked to the response with
 * WARC-Concurrent-To. This follows the shape proposed in iipc/warc-specifications#115 (the one draft convention,
 * which browsertrix-crawler writes too); docs/warc.md lists each field. The log streams into a spool like any body.
 */
import { createInflateRaw, constants as zlibConstants, type InflateRaw } from 'node:zlib';
import type { ProxyError } from '../core/errors.js';
import type { HttpFlow } from '../core/flow.js';
import type { ArchiveContext } from './archive-context.js';
import { connectionFields, metadataRecord, requestHead, responseHead, targetUri, truncationFor } from './exchange-recorder.js';
import { RecordSpool } from './record-spool.js';
import { bufferBlock, recordFromBuffer, recordFromSpool, type WarcRecord } from './warc-record.js';
import { formatWarcDate, newRecordId, nowMicros, type WarcField } from './warc-format.js';
import { parseDeflateExtension, WebSocketMessageReader, type DeflateParameters, type WebSocketMessage } from './websocket-messages.js';

export type Direction = 'client' | 'server';

/** RFC 7692 §7.2.2: each compressed message had these four bytes removed from its end. */
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

interface Inflated {
  data: Buffer;
  length: number;
}

export class WebSocketRecorder {
  readonly #flow: HttpFlow;
  readonly #context: ArchiveContext;
  readonly #startedMicros: number;
  readonly #openedAtMs = Date.now();
  readonly #log: RecordSpool;
  readonly #readers: Record<Direction, WebSocketMessageReader>;
  readonly #deflate: DeflateParameters | undefined;
  readonly #inflaters: Partial<Record<Direction, InflateRaw>> = {};
  /** A direction whose compressed stream could not be followed (a cut message broke the shared context). */
  readonly #inflateBroken: Partial<Record<Direction, boolean>> = {};
  readonly #ended: Record<Direction, boolean> = { client: false, server: false };
  /** Log lines are appended in order, one message at a time, whichever direction it came from. */
  #chain: Promise<void> = Promise.resolve();
  #finished = false;

  constructor(flow: HttpFlow, context: ArchiveContext, startedMicros: number) {
    this.#flow = flow;
    this.#context = context;
    this.#startedMicros = startedMicros;
    this.#log = new RecordSpool(Buffer.alloc(0), context.spool);
    this.#readers = { client: new WebSocketMessageReader(context.maxWebSocketMessageBytes), server: new WebSocketMessageReader(context.maxWebSocketMessageBytes) };
    this.#deflate = parseDeflateExtension(flow.receivedResponse?.headers.get('sec-websocket-extensions'));
  }

  data(direction: Direction, chunk: Buffer): Promise<void> | undefined {
    const messages = this.#readers[direction].push(chunk);
    if (messages.length === 0) return undefined;
    const at = Date.now();
    this.#chain = this.#chain.then(async () => {
      for (const message of messages) await this.#append(direction, message, at);
    });
    return this.#chain;
  }

  end(direction: Direction): Promise<void> | undefined {
    this.#ended[direction] = true;
    return this.#ended.client && this.#ended.server ? this.#finish() : undefined;
  }

  abort(direction: Direction, error: ProxyError): void {
    this.#log.markTruncated(truncationFor(error));
    this.#ended[direction] = true;
    if (this.#ended.client && this.#ended.server) void this.#finish();
  }

  async #append(direction: Direction, message: WebSocketMessage, atMs: number): Promise<void> {
    let payload = message.payload;
    let length = message.length;
    let compressed = message.compressed;
    if (compressed && this.#deflate !== undefined && !this.#inflateBroken[direction]) {
      const inflated = message.payload.length === message.length ? await this.#inflate(direction, message.payload) : undefined;
      if (inflated === undefined) this.#inflateBroken[direction] = true;
      else {
        payload = inflated.data;
        length = inflated.length;
        compressed = false;
      }
    }
    const entry: Record<string, unknown> = {
      ts: Math.max(0, atMs - this.#openedAtMs) / 1000,
      type: direction === 'client' ? 'send' : 'receive',
      opcode: message.opcode,
      mask: message.masked,
      payloadData: message.opcode === 1 && !compressed ? payload.toString('utf8') : payload.toString('base64'),
    };
    if (message.opcode !== 1 || compressed) entry['encoding'] = 'base64';
    if (compressed) entry['compressed'] = 'permessage-deflate';
    if (length > payload.length) {
      entry['truncated'] = true;
      entry['length'] = length;
    }
    if (message.opcode === 8 && payload.length >= 2) {
      entry['closeCode'] = payload.readUInt16BE(0);
      entry['closeReason'] = payload.subarray(2).toString('utf8');
    }
    await this.#log.append(Buffer.from(`${JSON.stringify(entry)}\n`, 'utf8'));
  }

  /** Inflates one message with the direction's shared window (unless the 101 said no context takeover). */
  #inflate(direction: Direction, payload: Buffer): Promise<Inflated | undefined> {
    const noTakeover = direction === 'client' ? this.#deflate!.clientNoContextTakeover : this.#deflate!.serverNoContextTakeover;
    let inflater = this.#inflaters[direction];
    if (inflater === undefined || noTakeover) {
      inflater?.close();
      inflater = createInflateRaw();
      this.#inflaters[direction] = inflater;
    }
    const limit = this.#context.maxWebSocketMessageBytes;
    const active = inflater;
    return new Promise((resolve) => {
      const parts: Buffer[] = [];
      let kept = 0;
      let total = 0;
      const onData = (chunk: Buffer): void => {
        total += chunk.length;
        if (kept < limit) {
          const piece = chunk.subarray(0, limit - kept);
          parts.push(piece);
          kept += piece.length;
        }
      };
      const onError = (): void => {
        active.off('data', onData);
        resolve(undefined);
      };
      active.on('data', onData);
      active.once('error', onError);
      active.write(Buffer.concat([payload, DEFLATE_TAIL]));
      active.flush(zlibConstants.Z_SYNC_FLUSH, () => {
        active.off('data', onData);
        active.off('error', onError);
        resolve({ data: Buffer.concat(parts), length: total });
      });
    });
  }

  async #finish(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    for (const direction of ['client', 'server'] as const) {
      this.#inflaters[direction]?.close();
      if (this.#readers[direction].broken !== undefined) this.#log.markTruncated('unspecified');
    }
    await this.#chain.catch(() => undefined);
    const log = await this.#log.seal();
    if (log.failure !== undefined) {
      await log.discard();
      this.#context.writer.reportSpoolFailure(log.failure);
      this.#context.writer.countDropped(3);
      return;
    }
    const flow = this.#flow;
    const context = this.#context;
    const { version, digest } = context;
    // Every record of the connection carries the ws:// (wss://) URI: replay looks the socket up by it.
    const uri = targetUri(flow, flow.request.scheme === 'https' ? 'wss:' : 'ws:');
    const date = formatWarcDate(this.#startedMicros, version);
    const responseId = newRecordId();
    const connection = connectionFields(flow, context);
    const head = responseHead(flow)!;
    const requestFields: WarcField[] = [['WARC-Type', 'request'], ['WARC-Record-ID', newRecordId()], ['WARC-Date', date], ['WARC-Target-URI', uri], ['WARC-Concurrent-To', responseId]];
    const records: WarcRecord[] = [
      recordFromBuffer(version, [['WARC-Type', 'response'], ['WARC-Record-ID', responseId], ['WARC-Date', date], ['WARC-Target-URI', uri], ...connection], 'application/http;msgtype=response', bufferBlock(head, digest)),
      recordFromBuffer(version, requestFields, 'application/http;msgtype=request', bufferBlock(requestHead(flow), digest)),
      recordFromSpool(
        version,
        [
          ['WARC-Type', 'resource'],
          ['WARC-Record-ID', newRecordId()],
          ['WARC-Date', formatWarcDate(nowMicros(), version)],
          ['WARC-Target-URI', uri],
          ['WARC-Concurrent-To', responseId],
          ['WARC-Resource-Type', 'websocket'],
        ],
        'application/jsonl',
        log,
        false,
      ),
    ];
    if (context.metadata) records.push(metadataRecord(flow, context, uri, date, responseId));
    await context.write(records, flow);
  }
}
