/**
 * Reads the WebSocket frames (RFC 6455 §5) of one direction of an upgraded connection as they stream past, and
 * puts them back together into messages: fragments joined, masks removed, control frames reported on their own.
 * Pure and incremental: bytes in, messages out, nothing about sockets. A message longer than `maxMessageBytes` is
 * kept to that length and reported with its full length, so a huge message cannot grow memory.
 *
 * Compressed messages (permessage-deflate, RFC 7692: RSV1 on the first frame) come out still compressed with
 * `compressed` set; the archiver inflates them (it owns the per-direction inflate context).
 */

export interface WebSocketMessage {
  /** 1 text, 2 binary, 8 close, 9 ping, 10 pong (§5.2). */
  opcode: number;
  /** Whether the sender masked it (clients must, servers must not). */
  masked: boolean;
  compressed: boolean;
  /** The payload as it was unmasked, up to the limit. */
  payload: Buffer;
  /** The payload's full length; more than payload.length when it was cut. */
  length: number;
}

const enum State {
  Header,
  Payload,
}

export class WebSocketMessageReader {
  readonly #maxMessageBytes: number;
  #state = State.Header;
  #header: Buffer = Buffer.alloc(0);
  // The frame being read.
  #fin = false;
  #opcode = 0;
  #rsv1 = false;
  #mask: Buffer | undefined;
  #remaining = 0;
  #maskOffset = 0;
  #control: Buffer[] = [];
  // The data message being assembled across fragments.
  #messageOpcode = 0;
  #messageMasked = false;
  #messageCompressed = false;
  #messageParts: Buffer[] = [];
  #messageKept = 0;
  #messageLength = 0;
  /** Set when the bytes stop being WebSocket (the rest of the stream is not read as frames). */
  broken: string | undefined;

  constructor(maxMessageBytes: number) {
    this.#maxMessageBytes = maxMessageBytes;
  }

  /** Feeds bytes; returns the messages they completed, in order. */
  push(chunk: Buffer): WebSocketMessage[] {
    const done: WebSocketMessage[] = [];
    let at = 0;
    while (at < chunk.length && this.broken === undefined) {
      if (this.#state === State.Header) at = this.#readHeader(chunk, at);
      else at = this.#readPayload(chunk, at, done);
      // A frame with no payload completes as soon as its header is read.
      if (this.#state === State.Payload && this.#remaining === 0) this.#endFrame(done);
    }
    return done;
  }

  #readHeader(chunk: Buffer, at: number): number {
    const header = this.#header.length === 0 ? chunk.subarray(at) : Buffer.concat([this.#header, chunk.subarray(at)]);
    const carried = this.#header.length;
    if (header.length < 2) {
      this.#header = Buffer.from(header);
      return chunk.length;
    }
    const b0 = header[0]!;
    const b1 = header[1]!;
    const masked = (b1 & 0x80) !== 0;
    let length = b1 & 0x7f;
    let size = 2;
    if (length === 126) size += 2;
    else if (length === 127) size += 8;
    if (masked) size += 4;
    if (header.length < size) {
      this.#header = Buffer.from(header);
      return chunk.length;
    }
    if (length === 126) length = header.readUInt16BE(2);
    else if (length === 127) {
      const big = header.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
        this.broken = 'a frame length beyond 2^53';
        return chunk.length;
      }
      length = Number(big);
    }
    this.#fin = (b0 & 0x80) !== 0;
    this.#rsv1 = (b0 & 0x40) !== 0;
    this.#opcode = b0 & 0x0f;
    this.#mask = masked ? Buffer.from(header.subarray(size - 4, size)) : undefined;
    this.#maskOffset = 0;
    this.#remaining = length;
    this.#header = Buffer.alloc(0);
    const isControl = this.#opcode >= 8;
    if (isControl && (length > 125 || !this.#fin)) {
      this.broken = 'a control frame that is fragmented or longer than 125 bytes';
      return chunk.length;
    }
    if (!isControl) {
      if (this.#opcode === 0) {
        if (this.#messageOpcode === 0) {
          this.broken = 'a continuation frame outside a message';
          return chunk.length;
        }
      } else if (this.#opcode === 1 || this.#opcode === 2) {
        if (this.#messageOpcode !== 0) {
          this.broken = 'a new message before the last one ended';
          return chunk.length;
        }
        this.#messageOpcode = this.#opcode;
        this.#messageMasked = masked;
        this.#messageCompressed = this.#rsv1;
      } else {
        this.broken = `reserved opcode ${this.#opcode}`;
        return chunk.length;
      }
    }
    this.#state = State.Payload;
    return at + size - carried;
  }

  #readPayload(chunk: Buffer, at: number, done: WebSocketMessage[]): number {
    const take = Math.min(this.#remaining, chunk.length - at);
    const isControl = this.#opcode >= 8;
    const room = isControl ? take : Math.max(0, Math.min(take, this.#maxMessageBytes - this.#messageKept));
    if (room > 0) {
      const piece = Buffer.from(chunk.subarray(at, at + room));
      if (this.#mask !== undefined) {
        for (let i = 0; i < piece.length; i += 1) piece[i] = piece[i]! ^ this.#mask[(this.#maskOffset + i) & 3]!;
      }
      if (isControl) this.#control.push(piece);
      else {
        this.#messageParts.push(piece);
        this.#messageKept += piece.length;
      }
    }
    this.#maskOffset += take;
    if (!isControl) this.#messageLength += take;
    this.#remaining -= take;
    if (this.#remaining === 0) this.#endFrame(done);
    return at + take;
  }

  #endFrame(done: WebSocketMessage[]): void {
    this.#state = State.Header;
    if (this.#opcode >= 8) {
      const payload = Buffer.concat(this.#control);
      this.#control = [];
      done.push({ opcode: this.#opcode, masked: this.#mask !== undefined, compressed: false, payload, length: payload.length });
      return;
    }
    if (!this.#fin) return;
    done.push({
      opcode: this.#messageOpcode,
      masked: this.#messageMasked,
      compressed: this.#messageCompressed,
      payload: Buffer.concat(this.#messageParts),
      length: this.#messageLength,
    });
    this.#messageOpcode = 0;
    this.#messageParts = [];
    this.#messageKept = 0;
    this.#messageLength = 0;
  }
}

/** What the 101 agreed for permessage-deflate (RFC 7692 §7), or undefined when it is not in use. */
export interface DeflateParameters {
  clientNoContextTakeover: boolean;
  serverNoContextTakeover: boolean;
}

export function parseDeflateExtension(extensions: string | undefined): DeflateParameters | undefined {
  if (extensions === undefined) return undefined;
  for (const offer of extensions.split(',')) {
    const [name, ...params] = offer.split(';').map((part) => part.trim().toLowerCase());
    if (name !== 'permessage-deflate') continue;
    const names = params.map((param) => param.split('=')[0]!.trim());
    return { clientNoContextTakeover: names.includes('client_no_context_takeover'), serverNoContextTakeover: names.includes('server_no_context_takeover') };
  }
  return undefined;
}
