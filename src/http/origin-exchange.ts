/**
 * One request to an origin on a direct route without node:http's client, so the response body is moved as
 * the bytes that were read instead of passing through a parser's stream: getaway writes the request head
 * (request-head.ts) on a pooled connection (upstream/origin-pool.ts), llhttp parses the response head and stops there
 * (response-head-parser.ts), and the body's framing is followed by counting, a Content-Length or chunked-decoder.ts.
 * Body taps (body-tap.ts) see both bodies as they are relayed, decoded of their transfer coding. What the client
 * receives is written through the flow's ServerResponse as before, so framing towards the client, trailers and
 * keep-alive are node:http's, unchanged. https:// origins go the same way over TLS (the plaintext read into the
 * shared buffer through the TLS socket's `onread`); upstream routes keep node:http's client (forward.ts).
 * The rest of a large untapped body of known length goes further: the kernel moves it from the origin socket to
 * the client socket (tunnel/kernel-splice.ts's takeBody) when both are plain TCP and the client is sent the
 * origin's Content-Length framing unchanged. A large untapped request body of known length goes the other way the
 * same way, at the price of the client's connection, which closes after the response (#sendRequestBodyByKernel).
 *
 *   client ──req──▶ getaway ──head + body bytes──▶ origin
 *   client ◀──res── getaway ◀──head (llhttp), body (counted)── origin
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { DestinationGuard } from '../core/destination.js';
import { ProxyError, toProxyError } from '../core/errors.js';
import type { HttpFlow } from '../core/flow.js';
import { abortTaps, notifyTaps, type BodyTap } from '../core/body-tap.js';
import { HeaderList } from '../core/header-list.js';
import { returnChunk, SMALL_READ, takeChunk } from '../core/shared-read-buffer.js';
import type { ProxyRuntime } from '../runtime.js';
import type { ConnectionUser, OriginConnection } from '../upstream/origin-pool.js';
import { takeBody, type BodyTransfer } from '../tunnel/kernel-splice.js';
import { ChunkedDecoder } from './chunked-decoder.js';
import type { AttemptResult, BodyState } from './forward.js';
import { mayResendFresh, watchBodyIdle } from './forward.js';
import { runResponseHeaders, takeOriginHead, type OriginHeadFacts } from './origin-head.js';
import { writeOriginHead } from './relay-response.js';
import { formatRequestHead } from './request-head.js';
import { originTlsOptions, serverNameFor } from '../upstream/origin-tls.js';
import type { DialTarget } from '../upstream/dialer.js';
import { closedBeforeHead, ResponseHeadParser, type ResponseHead } from './response-head-parser.js';

/** How the response body is delimited, as its head said. */
type Framing =
  | { kind: 'none' }
  | { kind: 'length'; remaining: number }
  | { kind: 'chunked'; decoder: ChunkedDecoder }
  /** No length and not chunked: the body runs to the origin's FIN (RFC 9112 §6.3 rule 8). */
  | { kind: 'close' };

type Phase = 'connecting' | 'head' | 'hooks' | 'body' | 'done';

/**
 * The least of a body still to come for the kernel to move it: below it, copying costs less than handing the two
 * sockets over and back (two descriptors duplicated, polled and closed).
 */
const KERNEL_BODY_BYTES = 128 * 1024;

/** What node:http keeps on a ServerResponse about its framing towards the client (not in its types). */
interface ResponseFraming {
  chunkedEncoding?: boolean;
}

function midResponseClose(): Error {
  return Object.assign(new Error('origin closed the connection mid-response'), { code: 'ECONNRESET' });
}

function framingOf(method: string, head: ResponseHead, facts: OriginHeadFacts): Framing {
  const status = head.statusCode;
  if (method === 'HEAD' || status === 204 || status === 304) return { kind: 'none' };
  if (facts.chunked) return { kind: 'chunked', decoder: new ChunkedDecoder() };
  const raw = head.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // llhttp (strict) refused a second Content-Length and anything but digits.
    if (name.length === 14 && name.toLowerCase() === 'content-length') return { kind: 'length', remaining: Number(raw[i + 1]) };
  }
  return { kind: 'close' };
}

export interface DirectExchangeOptions {
  body: BodyState;
  guard: DestinationGuard;
  localAddress: string | undefined;
  /** A stale pooled connection may be replaced by a fresh one once. */
  mayRetry: boolean;
  /** Dial a new connection even if the pool has one (the retry after a stale one). */
  fresh: boolean;
}

/** Same contract as forward.ts's attempt(): resolves with how the route did, rejects once a response was relayed in part. */
export function exchangeDirect(runtime: ProxyRuntime, flow: HttpFlow, req: IncomingMessage, res: ServerResponse, options: DirectExchangeOptions): Promise<AttemptResult> {
  return new Promise((resolve, reject) => {
    new DirectExchange(runtime, flow, req, res, options, resolve, reject).start();
  });
}

class DirectExchange implements ConnectionUser {
  readonly #runtime: ProxyRuntime;
  readonly #flow: HttpFlow;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #options: DirectExchangeOptions;
  readonly #resolve: (result: AttemptResult) => void;
  readonly #reject: (err: ProxyError) => void;
  #phase: Phase = 'connecting';
  #settled = false;
  #connection: OriginConnection | undefined;
  #reused = false;
  #parser: ResponseHeadParser | undefined;
  #head: ResponseHead | undefined;
  #framing: Framing = { kind: 'none' };
  #requestHead = '';
  #requestEnded = false;
  #stopRequestBody: (() => void) | undefined;
  /** Waiting for the client to drain: the origin's silence meanwhile is not its fault. */
  #heldByClient = false;
  /** Response taps (body-tap.ts), as the flow had them once its responseHeaders hooks ran. */
  #taps: readonly BodyTap[] | undefined;
  /** Tap promises still pending: reading waits for them as it waits for the client. */
  #tapHolds = 0;
  #originEnded = false;
  #timedOut = false;
  /** The body's rest, while the kernel moves it; what it had moved when the response timeout last looked. */
  #kernelBody: BodyTransfer | undefined;
  #kernelMovedAtTimeout = 0;
  /** The kernel cannot take this body (taps, the option, the client's framing or socket): no asking on every read. */
  #kernelRefused = false;
  readonly #clientGone = (): void => {
    if (this.#res.writableFinished) return;
    this.#closeConnection();
    const error = new ProxyError('client_aborted', 'client closed the connection before the response was complete');
    abortTaps(this.#taps, error);
    this.#settle(error);
  };
  readonly #clientDrained = (): void => {
    this.#heldByClient = false;
    if (this.#phase === 'body' && this.#tapHolds === 0) this.#connection?.resume();
  };

  constructor(
    runtime: ProxyRuntime,
    flow: HttpFlow,
    req: IncomingMessage,
    res: ServerResponse,
    options: DirectExchangeOptions,
    resolve: (result: AttemptResult) => void,
    reject: (err: ProxyError) => void,
  ) {
    this.#runtime = runtime;
    this.#flow = flow;
    this.#req = req;
    this.#res = res;
    this.#options = options;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  start(): void {
    const { request } = this.#flow;
    const { localAddress, body } = this.#options;
    try {
      this.#requestHead = formatRequestHead(request.method, request.path, request.headers.toRaw(), body);
    } catch (err) {
      this.#settle(toProxyError(err, 'proxy_internal_error'));
      return;
    }
    const origin = request.scheme === 'https' ? `https://${request.host}:${request.port}` : `${request.host}:${request.port}`;
    const key = localAddress === undefined ? origin : `${origin}:${localAddress}`;
    this.#res.on('close', this.#clientGone);
    this.#flow.setKillHandler(() => {
      this.#closeConnection();
      this.#res.destroy();
    });
    const pool = this.#runtime.originPool;
    const pooled = this.#options.fresh ? undefined : pool.take(key);
    if (pooled !== undefined) {
      this.#reused = true;
      this.#connected(pooled);
      return;
    }
    const connection = pool.create(key);
    this.#connection = connection;
    const target: DialTarget = { host: request.host, port: request.port };
    if (localAddress !== undefined) target.localAddress = localAddress;
    if (request.scheme === 'https') {
      target.tls = originTlsOptions(this.#runtime.originTls, serverNameFor(request.host));
      target.tls.session = pool.tlsSession(key);
    }
    this.#runtime.dialer.dial(target, this.#runtime.shutdownSignal, connection, this.#options.guard).then(
      (socket) => (target.tls === undefined ? this.#connected(connection) : this.#awaitTls(connection, socket as TLSSocket)),
      (err: unknown) => this.#failBeforeHead(toProxyError(err, 'connection_refused')),
    );
  }

  /**
   * The handshake of a new TLS connection (started by the dial, as the https agent would: originTrust, SNI for
   * names, ALPN http/1.1), the plaintext read into the shared buffer like a plain connection's, and the last
   * session for this origin offered for resumption. It counts against the response timeout, as on node:http's path.
   */
  #awaitTls(connection: OriginConnection, socket: TLSSocket): void {
    const pool = this.#runtime.originPool;
    socket.on('session', (session: Buffer) => pool.keepTlsSession(connection.key, session));
    if (this.#settled) {
      socket.destroy();
      return;
    }
    connection.hold(this);
    socket.setTimeout(this.#runtime.options.responseTimeoutMs);
    socket.once('secureConnect', () => this.#connected(connection));
  }

  #connected(connection: OriginConnection): void {
    this.#connection = connection;
    if (this.#settled) {
      connection.close();
      return;
    }
    const socket = connection.socket;
    const { request } = this.#flow;
    // The DNS-time checks ran for the flow that opened a pooled connection; this flow's own run on its peer.
    if (this.#reused && this.#runtime.hooks.has('dialing') && isIP(request.host) === 0) {
      const refused = this.#options.guard(socket.remoteAddress ?? '', request.port);
      if (refused !== undefined) {
        this.#failBeforeHead(refused);
        return;
      }
    }
    connection.hold(this);
    socket.setTimeout(this.#runtime.options.responseTimeoutMs);
    this.#flow.timestamps.upstreamConnected = Date.now();
    this.#phase = 'head';
    const { body } = this.#options;
    this.#parser = ResponseHeadParser.take((interim) => this.#interim(interim));
    socket.write(this.#requestHead, 'latin1');
    const taps = this.#flow.requestTaps;
    if (body.hasBody) {
      this.#sendRequestBody(socket, taps);
      return;
    }
    this.#requestEnded = true;
    // Taps of a request without a body hear only `end`.
    if (taps !== undefined) this.#endRequestTaps(taps);
  }

  /**
   * The client's body, as node:http's server parsed it, framed again for the origin: as is, or chunked (with the
   * client's trailer fields after the last chunk). With taps, each chunk goes to them too, and reading waits for
   * their promises as it waits for the origin to drain.
   */
  #sendRequestBody(socket: Socket, taps: readonly BodyTap[] | undefined): void {
    this.#options.body.consumed = true;
    if (taps === undefined && this.#sendRequestBodyByKernel(socket)) return;
    this.#copyRequestBody(socket, taps);
  }

  #copyRequestBody(socket: Socket, taps: readonly BodyTap[] | undefined): void {
    const { body } = this.#options;
    const req = this.#req;
    const flow = this.#flow;
    const idle = watchBodyIdle(req, this.#runtime.options.requestBodyIdleTimeoutMs, () => req.readableFlowing === false, (err) => this.#requestBodyFailed(err));
    /** How many waits (the origin's drain, a tap's promise) hold the client's body back. */
    let holds = 0;
    const release = (): void => {
      if (--holds === 0) req.resume();
    };
    const tapFailed = (err: unknown): void => this.#requestBodyFailed(toProxyError(err, 'proxy_internal_error'), false);
    const onData = (chunk: Buffer): void => {
      flow.bytes.requestBody += chunk.length;
      idle.refresh();
      let tapsDone: Promise<unknown> | undefined;
      if (taps !== undefined) {
        try {
          tapsDone = notifyTaps(taps, 'data', chunk);
        } catch (err) {
          tapFailed(err);
          return;
        }
      }
      let accepted: boolean;
      if (body.chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        accepted = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        accepted = socket.write(chunk);
      }
      if (!accepted) {
        holds++;
        socket.once('drain', release);
      }
      if (tapsDone !== undefined) {
        holds++;
        tapsDone.then(release, tapFailed);
      }
      if (holds > 0) req.pause();
    };
    const onEnd = (): void => {
      if (body.chunked) socket.write(lastChunk(req.rawTrailers), 'latin1');
      this.#requestEnded = true;
      this.#stopRequestBody = undefined;
      clearTimeout(idle);
      if (taps !== undefined) this.#endRequestTaps(taps);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    this.#stopRequestBody = () => {
      clearTimeout(idle);
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      socket.removeListener('drain', release);
    };
  }

  /**
   * The rest of a request body of known length, KERNEL_BODY_BYTES or more of it not yet read, moved by the kernel
   * from the client's socket to the origin's (takeBody), what node:http already parsed going first. node:http's
   * parser then never sees those bytes, and would take the bytes after them for more of this body instead of the
   * next request: so the client's connection closes after this response (Connection: close), as it does after any
   * body node:http did not read whole. One more TCP handshake per large upload is what the kernel's copy costs.
   * False, with nothing taken, where it cannot be done (the option, chunked framing, a body mostly parsed already).
   */
  #sendRequestBodyByKernel(socket: Socket): boolean {
    const req = this.#req;
    const length = Number(req.headers['content-length']);
    if (!this.#runtime.options.kernelSplice || this.#options.body.chunked || req.complete || !Number.isSafeInteger(length) || length < KERNEL_BODY_BYTES) return false;
    // This may run inside node:http's parsing of the read that carried the head (a pooled origin connection answers
    // at once), with body bytes after the head still to be parsed into the request: look once that read is done.
    setImmediate(() => {
      if (this.#settled) return;
      const rest = length - req.readableLength;
      if (req.complete || req.readableDidRead || rest < KERNEL_BODY_BYTES) {
        this.#copyRequestBody(socket, undefined);
        return;
      }
      if (req.readableLength === 0) {
        if (!this.#handRequestBodyToKernel(socket, null, rest)) this.#copyRequestBody(socket, undefined);
        return;
      }
      // Reading what node:http parsed makes the request ask its socket for more: Socket#resume() starts reading again
      // on the next tick. The handover stops reading for the kernel, so it comes on a tick after that one, or
      // node:http's parser and the kernel would both read the client's body, each taking some of it.
      const early = req.read() as Buffer;
      process.nextTick(() => {
        if (this.#settled) return;
        if (this.#handRequestBodyToKernel(socket, early, rest)) return;
        // The origin gets the bytes taken out of the request as they were, then the rest copied.
        this.#flow.bytes.requestBody += early.length;
        socket.write(early);
        this.#copyRequestBody(socket, undefined);
      });
    });
    return true;
  }

  /**
   * Starts the kernel's copy of a request body's `rest` after `early`; false where it cannot: the sockets cannot be
   * handed over, or an origin that answered meanwhile had its head relayed already, saying keep-alive.
   */
  #handRequestBodyToKernel(socket: Socket, early: Buffer | null, rest: number): boolean {
    if (this.#res.headersSent) return false;
    const flow = this.#flow;
    let idle: NodeJS.Timeout | undefined;
    /** The copy is over, whole or not: its timer goes, and the bytes it moved count. */
    const ended = (moved: number): void => {
      clearTimeout(idle);
      this.#stopRequestBody = undefined;
      flow.bytes.requestBody += moved;
    };
    const transfer = takeBody(this.#req.socket, socket, early, rest, (error) => {
      ended(error === undefined ? rest : transfer!.moved());
      if (error === undefined) this.#requestEnded = true;
      else
        this.#requestBodyFailed(
          (error as NodeJS.ErrnoException).code === 'ENODATA'
            ? new ProxyError('client_aborted', 'client closed the connection before sending its whole request body')
            : toProxyError(error, 'connection_terminated'),
        );
    });
    if (transfer === undefined) return false;
    this.#runtime.requestBodyMovedByKernel();
    this.#res.shouldKeepAlive = false;
    if (early !== null) flow.bytes.requestBody += early.length;
    // Node sees none of these bytes, so none re-arms the timer: the client was idle only if the count stood still
    // while nothing waited on the origin.
    let movedAtCheck = -1;
    const heldBack = (): boolean => {
      const moved = transfer.moved();
      const progressed = moved !== movedAtCheck;
      movedAtCheck = moved;
      return progressed || transfer.heldByDestination();
    };
    const stop = (): void => {
      ended(transfer.moved());
      transfer.stop();
    };
    idle = watchBodyIdle(this.#req, this.#runtime.options.requestBodyIdleTimeoutMs, heldBack, (err) => {
      stop();
      this.#requestBodyFailed(err);
    });
    this.#stopRequestBody = stop;
    return true;
  }

  #endRequestTaps(taps: readonly BodyTap[]): void {
    try {
      notifyTaps(taps, 'end')?.catch((err: unknown) => this.#requestBodyFailed(toProxyError(err, 'proxy_internal_error'), false));
    } catch (err) {
      this.#requestBodyFailed(toProxyError(err, 'proxy_internal_error'), false);
    }
  }

  /** The request body broke (the client went idle, a tap failed): the exchange fails with the reason, the taps are told. */
  #requestBodyFailed(err: ProxyError, stale = true): void {
    abortTaps(this.#flow.requestTaps, err);
    if (this.#phase === 'head' || this.#phase === 'connecting') this.#failBeforeHead(err, stale);
    else this.#failMidResponse(err);
  }

  #interim(head: ResponseHead): void {
    if (head.statusCode === 100 && this.#options.body.expectsContinue && !this.#res.headersSent) this.#res.writeContinue();
  }

  onRead(view: Buffer): boolean {
    if (this.#phase === 'body') return this.#relay(view, 0);
    if (this.#phase !== 'head') return false;
    let result;
    try {
      result = this.#parser!.execute(view);
    } catch (err) {
      this.#failBeforeHead(toProxyError(err, 'http_protocol_error'), false);
      return true;
    }
    if (result.kind === 'more') return true;
    this.#parser!.release();
    this.#parser = undefined;
    return this.#takeHead(result.head, view, result.bodyStart);
  }

  #takeHead(head: ResponseHead, view: Buffer, bodyStart: number): boolean {
    const flow = this.#flow;
    this.#head = head;
    this.#phase = 'hooks';
    const facts = takeOriginHead(this.#runtime, flow, head, this.#connection!.socket);
    if (facts instanceof ProxyError) {
      this.#failMidResponse(facts);
      return false;
    }
    this.#framing = framingOf(flow.request.method, head, facts);
    let pending: Promise<void> | undefined;
    try {
      pending = runResponseHeaders(this.#runtime, flow);
    } catch (err) {
      this.#failMidResponse(toProxyError(err, 'proxy_internal_error'));
      return false;
    }
    // Without an asynchronous hook the body starts in this same read; otherwise what came with the head is kept.
    if (pending === undefined) return this.#startBody(facts, view, bodyStart);
    const early = Buffer.from(view.subarray(bodyStart));
    pending.then(
      () => {
        if (this.#settled) return;
        if (this.#startBody(facts, early, 0)) this.#connection?.resume();
      },
      (err: unknown) => this.#failMidResponse(toProxyError(err, 'proxy_internal_error')),
    );
    return false;
  }

  #startBody(facts: OriginHeadFacts, bytes: Buffer, start: number): boolean {
    writeOriginHead(this.#runtime, this.#flow, this.#req, this.#res, facts);
    this.#phase = 'body';
    this.#taps = this.#flow.responseTaps;
    const framing = this.#framing;
    if (framing.kind === 'none' || (framing.kind === 'length' && framing.remaining === 0)) {
      this.#bodyEnded(start < bytes.length);
      return true;
    }
    const reading = this.#relay(bytes, start);
    if (this.#originEnded && this.#phase === 'body') this.onEnd();
    return reading;
  }

  /**
   * Moves the body bytes in `view[start…]` to the client. False while reading must wait for the client to drain; true
   * once the body ended, so a connection back in the pool goes on reading (an idle origin's FIN or stray bytes retire it).
   */
  #relay(view: Buffer, start: number): boolean {
    const framing = this.#framing;
    if (framing.kind === 'length') {
      const end = Math.min(view.length, start + framing.remaining);
      if (!this.#kernelRefused && framing.remaining - (end - start) >= KERNEL_BODY_BYTES && this.#handBodyToKernel(framing, view, start, end)) return false;
      if (end > start) this.#write(view, start, end);
      framing.remaining -= end - start;
      if (framing.remaining === 0) {
        this.#bodyEnded(end < view.length);
        return true;
      }
    } else if (framing.kind === 'chunked') {
      let end: number;
      try {
        end = framing.decoder.push(view, start, view.length, (from, to) => this.#write(view, from, to));
      } catch (err) {
        this.#failMidResponse(toProxyError(err, 'http_protocol_error'));
        return false;
      }
      if (end !== -1) {
        this.#bodyEnded(end < view.length);
        return true;
      }
    } else if (view.length > start) {
      this.#write(view, start, view.length);
    }
    return !this.#settled && !this.#heldByClient && this.#tapHolds === 0;
  }

  /**
   * Lets the kernel move this read's body bytes and the `remaining` still to come, if nothing needs to see them and
   * the client's connection has nothing queued (what node:http already wrote must go first). False: copy as usual,
   * and for good unless only the queue was in the way.
   */
  #handBodyToKernel(framing: { remaining: number }, view: Buffer, start: number, end: number): boolean {
    const res = this.#res;
    const client = res.socket;
    if (this.#settled || client === null) return false;
    // The client is sent the origin's bytes as they are only if node:http frames them by the same Content-Length.
    if (this.#taps !== undefined || !this.#runtime.options.kernelSplice || (res as unknown as ResponseFraming).chunkedEncoding !== false) {
      this.#kernelRefused = true;
      return false;
    }
    res.flushHeaders();
    if (res.writableLength > 0) return false;
    const early = end > start ? Buffer.from(view.subarray(start, end)) : null;
    const rest = framing.remaining - (end - start);
    const transfer = takeBody(this.#connection!.socket, client, early, rest, (error) => {
      this.#kernelBody = undefined;
      if (error !== undefined) {
        this.#failMidResponse((error as NodeJS.ErrnoException).code === 'ENODATA' ? midResponseClose() : error);
        return;
      }
      this.#flow.bytes.responseBody += rest;
      framing.remaining = 0;
      // The origin socket's reads were stopped for the kernel: the pool watches it again for stray bytes and FIN.
      this.#connection!.resume();
      this.#bodyEnded(false);
    });
    if (transfer === undefined) {
      this.#kernelRefused = true;
      return false;
    }
    this.#runtime.bodyMovedByKernel();
    this.#kernelBody = transfer;
    this.#kernelMovedAtTimeout = 0;
    this.#flow.bytes.responseBody += end - start;
    return true;
  }

  #write(view: Buffer, from: number, to: number): void {
    if (this.#settled) return;
    this.#flow.bytes.responseBody += to - from;
    const taps = this.#taps;
    // The view is of the shared read buffer, overwritten by the next read: the client's write gets a copy. A large
    // one goes into a pooled chunk that comes back when the write completed; a tap may keep its bytes longer, so a
    // tapped flow's copies are its own.
    if (taps === undefined && to - from >= SMALL_READ) {
      const chunk = takeChunk(to - from);
      view.copy(chunk, 0, from, to);
      this.#inFlight.push(chunk);
      this.#sendToClient(chunk.subarray(0, to - from), this.#written);
      return;
    }
    const chunk = Buffer.from(view.subarray(from, to));
    let tapsDone: Promise<unknown> | undefined;
    if (taps !== undefined) {
      try {
        tapsDone = notifyTaps(taps, 'data', chunk);
      } catch (err) {
        this.#failMidResponse(err);
        return;
      }
    }
    this.#sendToClient(chunk);
    if (tapsDone !== undefined) {
      this.#tapHolds++;
      tapsDone.then(this.#tapSettled, (err: unknown) => this.#failMidResponse(err));
    }
  }

  #sendToClient(chunk: Buffer, written?: () => void): void {
    if (!this.#res.write(chunk, written) && !this.#heldByClient) {
      this.#heldByClient = true;
      this.#res.once('drain', this.#clientDrained);
    }
  }

  /** Pooled chunks in the order they were written, until their writes complete (they complete in order). */
  readonly #inFlight: Buffer[] = [];
  readonly #written = (): void => returnChunk(this.#inFlight.shift()!);

  /** A tap's promise settled: reading goes on once no tap and not the client holds it back. */
  readonly #tapSettled = (): void => {
    if (--this.#tapHolds === 0 && !this.#heldByClient && this.#phase === 'body') this.#connection?.resume();
  };

  /** The origin's body is complete; `extraBytes`: the origin sent more than the response, so its connection is out of step. */
  #bodyEnded(extraBytes: boolean): void {
    // A tap may have failed the exchange while this read was being relayed.
    if (this.#settled) return;
    this.#phase = 'done';
    const framing = this.#framing;
    const connection = this.#connection!;
    const reusable = this.#head!.shouldKeepAlive && !extraBytes && this.#requestEnded && framing.kind !== 'close' && !this.#runtime.isClosing();
    this.#abandonRequestBody();
    if (!this.#requestEnded && !this.#req.complete) this.#runtime.answeredBeforeBodyEnd.add(this.#req.socket);
    connection.socket.setTimeout(0);
    if (reusable) this.#runtime.originPool.release(connection);
    else this.#closeConnection();
    const res = this.#res;
    if (framing.kind === 'chunked' && framing.decoder.trailers.length > 0) res.addTrailers(new HeaderList(framing.decoder.trailers).toJSON());
    const taps = this.#taps;
    if (taps === undefined) {
      res.end(() => this.#settle({ kind: 'done' }));
      return;
    }
    // Taps hear `end` once the client has been sent the last byte; the flow is done when they and the client are.
    res.end();
    let tapsEnded: Promise<unknown> | undefined;
    try {
      tapsEnded = notifyTaps(taps, 'end');
    } catch (err) {
      this.#settle(toProxyError(err, 'proxy_internal_error'));
      return;
    }
    const finished = res.writableFinished ? Promise.resolve() : new Promise<void>((resolve) => res.once('finish', resolve));
    Promise.all([tapsEnded, finished]).then(
      () => this.#settle({ kind: 'done' }),
      (err: unknown) => this.#settle(toProxyError(err, 'proxy_internal_error')),
    );
  }

  onEnd(): void {
    if (this.#phase === 'head' || this.#phase === 'connecting') {
      this.#failBeforeHead(closedBeforeHead());
    } else if (this.#phase === 'hooks') {
      this.#originEnded = true;
    } else if (this.#phase === 'body') {
      if (this.#framing.kind === 'close') this.#bodyEnded(false);
      else this.#failMidResponse(midResponseClose());
    }
  }

  onClose(error: Error | undefined): void {
    if (this.#phase === 'done' || this.#settled) return;
    if (this.#phase === 'head' || this.#phase === 'connecting') this.#failBeforeHead(error === undefined ? closedBeforeHead() : toProxyError(error, 'connection_terminated'));
    else if (this.#phase === 'body' && this.#framing.kind === 'close' && error === undefined) this.#bodyEnded(false);
    else this.#failMidResponse(error ?? midResponseClose());
  }

  onTimeout(): void {
    if (this.#heldByClient || this.#tapHolds > 0 || this.#phase === 'hooks') return;
    if (this.#phase === 'connecting') {
      // A TLS handshake that did not finish: no response head, as node:http's path reports it.
      this.#timedOut = true;
      this.#failBeforeHead(new ProxyError('http_response_timeout', `no response head within ${this.#runtime.options.responseTimeoutMs} ms`));
      return;
    }
    const kernelBody = this.#kernelBody;
    if (kernelBody !== undefined) {
      // Node sees none of the bytes the kernel moves, so it never re-arms this timeout: the origin was silent only if
      // the count stood still while nothing waited on the client.
      const moved = kernelBody.moved();
      if (moved !== this.#kernelMovedAtTimeout || kernelBody.heldByDestination()) {
        this.#kernelMovedAtTimeout = moved;
        this.#connection!.socket.setTimeout(this.#runtime.options.responseTimeoutMs);
        return;
      }
    }
    const { responseTimeoutMs } = this.#runtime.options;
    this.#timedOut = true;
    if (this.#phase === 'head') this.#failBeforeHead(new ProxyError('http_response_timeout', `no response head within ${responseTimeoutMs} ms`));
    else this.#failMidResponse(new ProxyError('connection_read_timeout', `origin sent nothing for ${responseTimeoutMs} ms`));
  }

  /** Stops sending a request body that has not ended: what its taps saw is truncated. */
  #abandonRequestBody(): void {
    const stop = this.#stopRequestBody;
    if (stop === undefined) return;
    this.#stopRequestBody = undefined;
    stop();
    abortTaps(this.#flow.requestTaps, new ProxyError('connection_terminated', 'the exchange ended before the request body was sent whole'));
  }

  #closeConnection(): void {
    this.#kernelBody?.stop();
    this.#kernelBody = undefined;
    this.#abandonRequestBody();
    const connection = this.#connection;
    if (connection === undefined) return;
    connection.hold(undefined);
    connection.close();
  }

  /**
   * Nothing of a response reached the client. A pooled connection the origin closed while idle fails on first use; a
   * request that sent nothing irreplaceable goes again on a fresh connection (what node:http's path does). An origin
   * that stayed silent past the response timeout closed nothing: it gets no second request. `stale` is false for
   * failures that say nothing about the connection's age (a response that does not parse).
   */
  #failBeforeHead(error: ProxyError, stale = true): void {
    if (this.#settled) return;
    this.#parser?.release();
    this.#parser = undefined;
    this.#closeConnection();
    const { body, mayRetry } = this.#options;
    const staleConnection = stale && this.#reused && !this.#timedOut && !error.refusedByProxy;
    if (staleConnection && mayRetry && mayResendFresh(this.#flow, body, this.#res)) {
      this.#detach();
      exchangeDirect(this.#runtime, this.#flow, this.#req, this.#res, { ...this.#options, mayRetry: false, fresh: true }).then(this.#resolve, this.#reject);
      return;
    }
    // The request went out once the connection was held (phase 'head'); a refused pooled peer sent nothing.
    this.#settle({ kind: 'failed', error, requestSent: this.#phase !== 'connecting' });
  }

  /** After the head: the client's response (if begun) cannot be mended; forward.ts's caller destroys it. */
  #failMidResponse(err: unknown): void {
    if (this.#settled) return;
    this.#phase = 'done';
    this.#closeConnection();
    const error = toProxyError(err, 'http_response_incomplete');
    abortTaps(this.#taps, error);
    this.#settle(error);
  }

  /** This exchange is over: it answers to nothing from the client any more. */
  #detach(): void {
    this.#settled = true;
    this.#res.removeListener('close', this.#clientGone);
    this.#res.removeListener('drain', this.#clientDrained);
  }

  #settle(outcome: AttemptResult | ProxyError): void {
    if (this.#settled) return;
    this.#detach();
    if (outcome instanceof ProxyError) this.#reject(outcome);
    else this.#resolve(outcome);
  }
}

/** The last chunk and the trailer section (RFC 9112 §7.1.2): the client's trailer fields as node:http parsed them, or none. */
function lastChunk(rawTrailers: readonly string[]): string {
  let last = '0\r\n';
  for (let i = 0; i + 1 < rawTrailers.length; i += 2) last += `${rawTrailers[i]}: ${rawTrailers[i + 1]}\r\n`;
  return `${last}\r\n`;
}
