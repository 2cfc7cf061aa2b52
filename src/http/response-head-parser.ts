/**
 * Parses an origin's response head with llhttp (node:http's own parser, strict mode) and stops at the end of the
 * head, so the body can be moved as bytes (origin-exchange.ts). The parser's headers-complete callback answers 2,
 * llhttp's "the rest is another protocol", which is how node:http itself hands a socket over after a 101: execute()
 * then returns how many bytes the head took. Interim (1xx) heads are reported and parsing goes on to the final head.
 *
 * `HTTPParser` comes from `_http_common`, the module node:http builds its client and server on: its surface
 * (initialize, execute, finish, the kOn* callback slots) has been stable since Node 12. Where it is missing the fast
 * path is off (isResponseHeadParserAvailable) and every request takes node:http's client.
 */
import { createRequire } from 'node:module';
import { ProxyError, toProxyError } from '../core/errors.js';

/** What a response head says, in the shape node:http's IncomingMessage offers it (rawHeaders as received). */
export interface ResponseHead {
  statusCode: number;
  statusMessage: string;
  httpVersion: string;
  rawHeaders: string[];
  /** llhttp's verdict from version and Connection: whether the connection may carry another request. */
  shouldKeepAlive: boolean;
}

interface NodeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; reason?: string });
  close(): void;
  [slot: number]: unknown;
}

interface HttpParserClass {
  new (): NodeHttpParser;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kLenientNone: number;
}

function loadParserClass(): HttpParserClass | undefined {
  try {
    const common = createRequire(import.meta.url)('_http_common') as { HTTPParser?: HttpParserClass };
    const Parser = common.HTTPParser;
    if (typeof Parser !== 'function' || typeof Parser.kOnHeadersComplete !== 'number' || typeof Parser.RESPONSE !== 'number') return undefined;
    return Parser;
  } catch {
    return undefined;
  }
}

const HTTPParser = loadParserClass();

export function isResponseHeadParserAvailable(): boolean {
  return HTTPParser !== undefined;
}

/** What headers-complete answers llhttp (node_http_parser.cc passes it on). */
const SKIP_BODY = 1;
const STOP_AFTER_HEAD = 2;
/** node:http's resource for its parser's async hooks; one shared object, as nothing reads it. */
const ASYNC_RESOURCE = { type: 'GETAWAY_ORIGIN_RESPONSE' };
/** Parsers kept for reuse: one is in use per request waiting for its head. */
const MAX_FREE_PARSERS = 64;
const freeParsers: ResponseHeadParser[] = [];

export type HeadParseResult =
  /** The final head; the body starts at `bodyStart` in the buffer given to execute(). */
  | { kind: 'head'; head: ResponseHead; bodyStart: number }
  | { kind: 'more' };

export class ResponseHeadParser {
  readonly #parser: NodeHttpParser;
  #pendingHeaders: string[] = [];
  #head: ResponseHead | undefined;
  #onInterim: ((head: ResponseHead) => void) | undefined;

  private constructor(Parser: HttpParserClass) {
    const parser = new Parser();
    // A head split across reads is handed over in parts before headers-complete.
    parser[Parser.kOnHeaders] = (headers: string[]) => {
      for (const field of headers) this.#pendingHeaders.push(field);
    };
    parser[Parser.kOnHeadersComplete] = (
      versionMajor: number,
      versionMinor: number,
      headers: string[] | undefined,
      _method: unknown,
      _url: unknown,
      statusCode: number,
      statusMessage: string,
      _upgrade: boolean,
      shouldKeepAlive: boolean,
    ): number => {
      let rawHeaders = headers;
      if (rawHeaders === undefined) {
        rawHeaders = this.#pendingHeaders;
        this.#pendingHeaders = [];
      }
      const head: ResponseHead = { statusCode, statusMessage, httpVersion: `${versionMajor}.${versionMinor}`, rawHeaders, shouldKeepAlive };
      // 101 is a protocol switch, not an interim answer; no request of this path asks for one.
      if (statusCode >= 100 && statusCode < 200 && statusCode !== 101) {
        this.#onInterim?.(head);
        return SKIP_BODY;
      }
      this.#head = head;
      return STOP_AFTER_HEAD;
    };
    this.#parser = parser;
  }

  /** A parser ready for a new response; give it back with release() once the head is in or the exchange failed. */
  static take(onInterim: (head: ResponseHead) => void): ResponseHeadParser {
    if (HTTPParser === undefined) throw new Error('node:http parser is not available');
    const parser = freeParsers.pop() ?? new ResponseHeadParser(HTTPParser);
    parser.#parser.initialize(HTTPParser.RESPONSE, ASYNC_RESOURCE, 0, HTTPParser.kLenientNone);
    parser.#onInterim = onInterim;
    return parser;
  }

  /** Throws a ProxyError (the llhttp code mapped by toProxyError) when the bytes are not a valid response head. */
  execute(data: Buffer): HeadParseResult {
    const result = this.#parser.execute(data);
    if (typeof result !== 'number') {
      // As node:http's client does: the message names the reason, and the bytes that failed go with the error (a
      // copy: `data` is a view of the shared read buffer).
      if (typeof result.reason === 'string') result.message = `Parse Error: ${result.reason}`;
      (result as Error & { rawPacket?: Buffer }).rawPacket = Buffer.from(data);
      throw toProxyError(result, 'http_protocol_error');
    }
    const head = this.#head;
    if (head === undefined) return { kind: 'more' };
    this.#head = undefined;
    return { kind: 'head', head, bodyStart: result };
  }

  release(): void {
    this.#onInterim = undefined;
    this.#head = undefined;
    this.#pendingHeaders = [];
    if (freeParsers.length < MAX_FREE_PARSERS) freeParsers.push(this);
    else this.#parser.close();
  }
}

/** The failure for a connection that ended before the final head was in. */
export function closedBeforeHead(): ProxyError {
  return new ProxyError('connection_terminated', 'origin closed the connection before sending a response head', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
}
