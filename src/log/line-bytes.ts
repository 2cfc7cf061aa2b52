/**
 * A JSON line written straight into a batch's buffer, piece by piece: the bytes a template string of the same
 * pieces would encode to in UTF-8, with strings escaped exactly as JSON.stringify escapes them. Building the flow
 * log's line as a string first cost a keep-alive request about 1.9 KB of garbage (its pieces, the joined tree, the
 * flattened copy) and a second pass to encode it (docs/performance.md, "The flow log, written in place").
 *
 * Nothing is checked while writing: past the buffer's end, a typed array ignores stores, so `pos` goes on counting
 * and `overflowed` tells afterwards that the line did not fit (LineBatcher.finishLine() then retries or gives up).
 */
export class LineBytes {
  pos = 0;

  constructor(readonly buffer: Buffer) {}

  get overflowed(): boolean {
    return this.pos > this.buffer.length;
  }

  /** Text known to be ASCII that needs no escaping (field names, punctuation, UUIDs). */
  ascii(text: string): void {
    const buffer = this.buffer;
    let pos = this.pos;
    for (let i = 0; i < text.length; i++) buffer[pos++] = text.charCodeAt(i);
    this.pos = pos;
  }

  byte(value: number): void {
    this.buffer[this.pos++] = value;
  }

  bytes(chunk: Uint8Array): void {
    if (this.pos + chunk.length <= this.buffer.length) this.buffer.set(chunk, this.pos);
    this.pos += chunk.length;
  }

  /** A JSON string: the quotes and chars(). */
  string(text: string): void {
    this.buffer[this.pos++] = 0x22;
    this.chars(text);
    this.buffer[this.pos++] = 0x22;
  }

  /**
   * A string's JSON text without its quotes. Printable ASCII other than the quote and the backslash is its own
   * text, one byte per character; a string with anything else is written as JSON.stringify gives it, in UTF-8.
   */
  chars(text: string): void {
    const buffer = this.buffer;
    const start = this.pos;
    let pos = start;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) {
        this.pos = start;
        this.utf8(JSON.stringify(text).slice(1, -1));
        return;
      }
      buffer[pos++] = code;
    }
    this.pos = pos;
  }

  /** A number as a template string writes it: digits for integers, String(n) for anything else. */
  number(value: number): void {
    if (!Number.isSafeInteger(value)) {
      this.ascii(String(value));
      return;
    }
    if (value < 0) {
      this.buffer[this.pos++] = 0x2d;
      value = -value;
    }
    let digits = 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    const buffer = this.buffer;
    let pos = (this.pos += digits);
    do {
      const rest = Math.floor(value / 10);
      buffer[--pos] = 0x30 + (value - rest * 10);
      value = rest;
    } while (value > 0);
  }

  /** Any text, in UTF-8 (JSON text JSON.stringify made, for one). */
  utf8(text: string): void {
    const length = Buffer.byteLength(text);
    if (this.pos + length <= this.buffer.length) this.buffer.write(text, this.pos);
    this.pos += length;
  }
}
