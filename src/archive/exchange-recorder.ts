/**
 * Records one HTTP exchange as the proxy relays it: the request as sent to the origin and the response as
 * received, each spooled through a body tap, then written as response (or revisit), request and optional metadata
 * records sharing WARC-Target-URI and WARC-Date, linked with WARC-Concurrent-To. Upgrades whose origin answered 101
 * go to websocket-recorder.ts instead.
 */
import type { HttpFlow } from '../core/flow.js';
import type { ProxyError } from '../core/errors.js';
import { formatAbsoluteUrl } from '../http/request-target.js';
import { RecordSpool, type SealedSpool } from './record-spool.js';
import { bufferBlock, recordFromBuffer, recordFromSpool, type WarcRecord } from './warc-record.js';
import {
  formatRequestHead,
  formatResponseHead,
  formatWarcDate,
  formatWarcFields,
  identicalPayloadProfile,
  newRecordId,
  nowMicros,
  type WarcField,
  type WarcTruncation,
} from './warc-format.js';
import type { ArchiveContext } from './archive-context.js';

/** Why a body broke, in WARC-Truncated's words (§5.13). */
export function truncationFor(error: ProxyError): WarcTruncation {
  return /timeout/.test(error.type) ? 'time' : 'disconnect';
}

/** WARC-IP-Address, WARC-Protocol and WARC-Cipher-Suite, from what the IO layer saw of the origin connection. */
export function connectionFields(flow: HttpFlow, context: ArchiveContext): WarcField[] {
  const fields: WarcField[] = [];
  const connection = flow.upstreamConnection;
  // Through an upstream proxy the peer is the proxy, not the origin the field is about.
  if (flow.upstream === 'direct' && connection?.remoteAddress !== undefined) fields.push(['WARC-IP-Address', connection.remoteAddress.replace(/^::ffff:/, '')]);
  if (context.version === '1.1') {
    const httpVersion = flow.receivedResponse?.httpVersion ?? '1.1';
    fields.push(['WARC-Protocol', `http/${httpVersion}`]);
    const tls = connection?.tls;
    if (tls?.protocol) fields.push(['WARC-Protocol', tls.protocol.toLowerCase().replace(/^tlsv/, 'tls/')]);
    if (tls?.cipherSuite) fields.push(['WARC-Cipher-Suite', tls.cipherSuite]);
  }
  return fields;
}

export function targetUri(flow: HttpFlow, scheme?: string): string {
  const url = formatAbsoluteUrl(flow.request);
  return scheme === undefined ? url : url.replace(/^https?:/, scheme);
}

/** The response head as the origin sent it (undefined before it arrived, or for answers a hook made). */
export function responseHead(flow: HttpFlow): Buffer | undefined {
  const received = flow.receivedResponse;
  if (received === undefined) return undefined;
  return formatResponseHead({ httpVersion: received.httpVersion, status: received.status, reason: received.reason, rawHeaders: received.headers.toRaw() });
}

export function requestHead(flow: HttpFlow): Buffer {
  return formatRequestHead({ method: flow.request.method, path: flow.request.path, rawHeaders: flow.request.headers.toRaw() });
}

/** application/warc-fields about the flow: who asked, through what, how long each step took. */
export function metadataBlock(flow: HttpFlow): Buffer {
  const fields: WarcField[] = [
    ['getaway-flow-id', flow.id],
    ['client-address', `${flow.client.remoteAddress}:${flow.client.remotePort}`],
  ];
  if (flow.user !== undefined) fields.push(['user', flow.user]);
  if (flow.upstream !== undefined) fields.push(['upstream', flow.upstream]);
  for (const attempt of flow.routeAttempts) fields.push(['route-attempt', attempt.reason === undefined ? `${attempt.route} ${attempt.outcome}` : `${attempt.route} ${attempt.outcome}: ${attempt.reason}`]);
  const { start, upstreamConnected, responseHeaders } = flow.timestamps;
  if (upstreamConnected !== undefined) fields.push(['upstream-connected-ms', String(upstreamConnected - start)]);
  if (responseHeaders !== undefined) fields.push(['response-headers-ms', String(responseHeaders - start)]);
  fields.push(['duration-ms', String(Date.now() - start)]);
  fields.push(['request-body-bytes', String(flow.bytes.requestBody)]);
  fields.push(['response-body-bytes', String(flow.bytes.responseBody)]);
  if (flow.error !== undefined) fields.push(['error', `${flow.error.type}: ${flow.error.message}`]);
  return formatWarcFields(fields);
}

export function metadataRecord(flow: HttpFlow, context: ArchiveContext, uri: string, date: string, responseId: string): WarcRecord {
  return recordFromBuffer(
    context.version,
    [
      ['WARC-Type', 'metadata'],
      ['WARC-Record-ID', newRecordId()],
      ['WARC-Date', date],
      ['WARC-Target-URI', uri],
      ['WARC-Concurrent-To', responseId],
    ],
    'application/warc-fields',
    bufferBlock(metadataBlock(flow), context.digest),
  );
}

export class ExchangeRecorder {
  readonly #flow: HttpFlow;
  readonly #context: ArchiveContext;
  /** When the exchange began: the date every record of it carries. */
  readonly #startedMicros = nowMicros();
  #request: RecordSpool | undefined;
  #requestEnded = false;
  #response: RecordSpool | undefined;
  #finished = false;

  constructor(flow: HttpFlow, context: ArchiveContext) {
    this.#flow = flow;
    this.#context = context;
  }

  /** The request as sent: the tap's first event comes when it goes out, after every requestHeaders hook. */
  #requestSpool(): RecordSpool {
    this.#request ??= new RecordSpool(requestHead(this.#flow), this.#context.spool);
    return this.#request;
  }

  #responseSpool(): RecordSpool | undefined {
    if (this.#response !== undefined) return this.#response;
    const head = responseHead(this.#flow);
    if (head !== undefined) this.#response = new RecordSpool(head, this.#context.spool);
    return this.#response;
  }

  requestData(chunk: Buffer): Promise<void> | undefined {
    return this.#requestSpool().append(chunk);
  }

  requestEnd(): void {
    this.#requestSpool();
    this.#requestEnded = true;
  }

  requestAbort(error: ProxyError): void {
    this.#requestSpool().markTruncated(truncationFor(error));
    this.#requestEnded = true;
  }

  responseData(chunk: Buffer): Promise<void> | undefined {
    const spool = this.#responseSpool();
    if (spool === undefined) return undefined;
    const written = spool.append(chunk);
    const room = this.#context.writer.room();
    if (room === undefined) return written;
    return written === undefined ? room : written.then(() => room);
  }

  /**
   * The response went through whole. Its records are written in the background: a flow that waits before it ends
   * costs CPU (a quick check with an addon that only tapped both bodies: 132 µs per keep-alive request with a
   * synchronous `end`, 190 µs with one settling a tick later, more flows being alive at once), and
   * the writer's backlog bound (responseData) is what keeps a slow disk from piling up work.
   */
  responseEnd(): void {
    this.#context.track(this.#finish());
  }

  /** The response broke mid-body: what arrived is written, marked truncated. */
  responseAbort(error: ProxyError): void {
    this.#responseSpool()?.markTruncated(truncationFor(error));
    this.#context.track(this.#finish());
  }

  async #finish(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    const response = this.#responseSpool();
    // A response a hook made, or no response at all: nothing was exchanged with an origin.
    if (response === undefined) {
      await this.#request?.discard();
      return;
    }
    const request = this.#requestSpool();
    // The origin may answer before it has read the whole request (a 413, say): the request record ends there.
    if (!this.#requestEnded) request.markTruncated('unspecified');
    const [sealedResponse, sealedRequest] = await Promise.all([response.seal(), request.seal()]);
    const failure = sealedResponse.failure ?? sealedRequest.failure;
    if (failure !== undefined) {
      await Promise.all([sealedResponse.discard(), sealedRequest.discard()]);
      this.#context.writer.reportSpoolFailure(failure);
      this.#context.writer.countDropped(2);
      return;
    }
    await this.#write(sealedResponse, sealedRequest);
  }

  async #write(response: SealedSpool, request: SealedSpool): Promise<void> {
    const flow = this.#flow;
    const context = this.#context;
    const { version } = context;
    const uri = targetUri(flow);
    const date = formatWarcDate(this.#startedMicros, version);
    const responseId = newRecordId();
    const connection = connectionFields(flow, context);
    const dedupable = context.dedup !== undefined && response.truncated === undefined && response.payloadLength > 0;
    const seen = dedupable ? context.dedup!.lookup(response.payloadDigest) : undefined;
    const entry = { url: uri, date, recordId: responseId };
    if (dedupable && seen === undefined) context.dedup!.claim(response.payloadDigest, entry);
    const records: WarcRecord[] = [];
    if (seen !== undefined) {
      const head = this.#response!.head;
      records.push(
        recordFromBuffer(
          version,
          [
            ['WARC-Type', 'revisit'],
            ['WARC-Record-ID', responseId],
            ['WARC-Date', date],
            ['WARC-Target-URI', uri],
            ...connection,
            ['WARC-Profile', identicalPayloadProfile(version)],
            ['WARC-Refers-To-Target-URI', seen.url],
            ['WARC-Refers-To-Date', seen.date],
            ['WARC-Refers-To', seen.recordId],
          ],
          'application/http;msgtype=response',
          bufferBlock(head, context.digest),
          response.payloadDigest,
        ),
      );
      await response.discard();
    } else {
      records.push(recordFromSpool(version, [['WARC-Type', 'response'], ['WARC-Record-ID', responseId], ['WARC-Date', date], ['WARC-Target-URI', uri], ...connection], 'application/http;msgtype=response', response, true));
    }
    const requestFields: WarcField[] = [['WARC-Type', 'request'], ['WARC-Record-ID', newRecordId()], ['WARC-Date', date], ['WARC-Target-URI', uri], ['WARC-Concurrent-To', responseId]];
    const ip = connection.find(([name]) => name === 'WARC-IP-Address');
    if (ip !== undefined) requestFields.push(ip);
    records.push(recordFromSpool(version, requestFields, 'application/http;msgtype=request', request, true));
    if (context.metadata) records.push(metadataRecord(flow, context, uri, date, responseId));
    const written = await context.write(records, flow, seen !== undefined);
    if (dedupable && seen === undefined) {
      if (written) context.dedup!.persist(response.payloadDigest, entry);
      else context.dedup!.release(response.payloadDigest, responseId);
    }
  }
}
