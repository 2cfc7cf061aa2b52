/**
 * Follows a chunked body (RFC 9112 §7.1) as bytes arrive, reporting where its data is and where it ends, so the body
 * can be relayed without a parser's stream: llhttp parses the head (response-head-parser.ts), this counts the rest.
 * As strict as llhttp in its strict mode: CRLF line ends only, hex sizes with nothing between size and CR but an
 * extension, no obs-fold in trailers. Written by hand because no parser library hands back positions in the
 * caller's buffer; llhttp copies every body chunk into a Buffer of its own.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { ProxyError } from '../core/errors.js';

const CR = 13;
const LF = 10;
/** More hex digits than this cannot be a size a body of ours could have (2^52 bytes and up). */
const MAX_SIZE_DIGITS = 13;
/** Node's own bound on a message's chunk extensions (CVE-2024-22019). */
const MAX_EXTENSION_BYTES = 16384;
/** Bound on the trailer section, as a head is bounded. */
const MAX_TRAILER_BYTES = 16384;

const enum State {
  SizeFirst,
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  EndLf,
  Done,
}

function malformed(detail: string): ProxyError {
  return new ProxyError('http_protocol_error', `origin sent a malformed chunked body: ${detail}`);
}

/** Where the run from `from` ends: at the next CR before `end`, or at `end`. */
function runToCr(buffer: Uint8Array, from: number, end: number): number {
  const cr = buffer.indexOf(CR, from);
  return cr === -1 || cr >= end ? end : cr;
}

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  const lower = byte | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

export class ChunkedDecoder {
  #state = State.SizeFirst;
  /** Bytes of the current chunk's data still to come. */
  #remaining = 0;
  #sizeDigits = 0;
  #extensionBytes = 0;
  #trailerBytes = 0;
  #line = '';
  /** Trailer fields as received, name and value alternating (like node:http's rawTrailers). */
  readonly trailers: string[] = [];

  get done(): boolean {
    return this.#state === State.Done;
  }

  /**
   * Reads `buffer[start, end)`, calling `onData(from, to)` for each run of body data in it. Returns the offset just
   * past the body's last byte when the body ends in this range, or -1 when it goes on. Throws a ProxyError
   * (http_protocol_error) on malformed framing.
   */
  push(buffer: Uint8Array, start: number, end: number, onData: (from: number, to: number) => void): number {
    let i = start;
    while (i < end) {
      switch (this.#state) {
        case State.Data: {
          const to = Math.min(end, i + this.#remaining);
          onData(i, to);
          this.#remaining -= to - i;
          i = to;
          if (this.#remaining === 0) this.#state = State.DataCr;
          break;
        }
        case State.SizeFirst:
        case State.Size: {
          const byte = buffer[i]!;
          const digit = hexValue(byte);
          if (digit >= 0) {
            if (++this.#sizeDigits > MAX_SIZE_DIGITS) throw malformed('chunk size too large');
            this.#remaining = this.#remaining * 16 + digit;
            this.#state = State.Size;
          } else if (this.#state === State.SizeFirst) {
            throw malformed('expected a chunk size');
          } else if (byte === CR) {
            this.#state = State.SizeLf;
          } else if (byte === 0x3b /* ; */) {
            this.#state = State.Extension;
          } else {
            throw malformed('invalid character after the chunk size');
          }
          i++;
          break;
        }
        case State.Extension: {
          const to = runToCr(buffer, i, end);
          for (let j = i; j < to; j++) {
            const byte = buffer[j]!;
            if ((byte < 0x20 && byte !== 9) || byte === 0x7f) throw malformed('invalid character in a chunk extension');
          }
          this.#extensionBytes += to - i;
          if (this.#extensionBytes > MAX_EXTENSION_BYTES) throw malformed('chunk extensions too large');
          i = to;
          if (to < end) {
            this.#state = State.SizeLf;
            i++;
          }
          break;
        }
        case State.SizeLf: {
          if (buffer[i] !== LF) throw malformed('expected LF after the chunk size line');
          i++;
          this.#sizeDigits = 0;
          this.#state = this.#remaining === 0 ? State.TrailerStart : State.Data;
          break;
        }
        case State.DataCr: {
          if (buffer[i] !== CR) throw malformed('chunk data longer than its size');
          i++;
          this.#state = State.DataLf;
          break;
        }
        case State.DataLf: {
          if (buffer[i] !== LF) throw malformed('expected LF after chunk data');
          i++;
          this.#state = State.SizeFirst;
          break;
        }
        case State.TrailerStart: {
          if (buffer[i] === CR) {
            this.#state = State.EndLf;
            i++;
          } else if (buffer[i] === LF) {
            throw malformed('a bare LF in the trailer section');
          } else {
            this.#state = State.TrailerLine;
          }
          break;
        }
        case State.TrailerLine: {
          const to = runToCr(buffer, i, end);
          const lf = buffer.indexOf(LF, i);
          if (lf !== -1 && lf < to) throw malformed('a bare LF in a trailer field');
          this.#trailerBytes += to - i;
          if (this.#trailerBytes > MAX_TRAILER_BYTES) throw new ProxyError('http_response_header_section_size', 'origin sent a trailer section that is too large');
          this.#line += Buffer.from(buffer.buffer, buffer.byteOffset + i, to - i).toString('latin1');
          i = to;
          if (to < end) {
            this.#state = State.TrailerLf;
            i++;
          }
          break;
        }
        case State.TrailerLf: {
          if (buffer[i] !== LF) throw malformed('expected LF after a trailer field');
          i++;
          this.#takeTrailerLine();
          this.#state = State.TrailerStart;
          break;
        }
        case State.EndLf: {
          if (buffer[i] !== LF) throw malformed('expected LF at the end of the body');
          this.#state = State.Done;
          return i + 1;
        }
        case State.Done:
          return i;
      }
    }
    return -1;
  }

  #takeTrailerLine(): void {
    const line = this.#line;
    this.#line = '';
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    // node:http's own field checks: a name is a token, so one ending in whitespace (refused by RFC 9112 §5.1) or a line
    // starting with it (obs-fold) fails; a value has no control character but HTAB.
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      throw malformed(`invalid trailer field ${JSON.stringify(name)}`);
    }
    this.trailers.push(name, value);
  }
}
