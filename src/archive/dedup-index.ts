/**
 * Payloads already archived, by payload digest, so a repeat becomes a revisit record instead of a second copy.
 * Kept on disk as an append-only file of JSON lines (one per archived payload), read back at start, so it
 * survives restarts; bounded to `maxEntries`, the least recently seen going first. When the file holds twice
 * that many lines it is rewritten with the live entries (written aside, then renamed over).
 */
import { createReadStream } from 'node:fs';
import { appendFile, rename, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

export interface DedupEntry {
  /** WARC-Target-URI of the record that holds the payload. */
  url: string;
  /** Its WARC-Date. */
  date: string;
  /** Its WARC-Record-ID. */
  recordId: string;
}

export class DedupIndex {
  readonly #path: string;
  readonly #maxEntries: number;
  /** Insertion order is recency: a hit moves an entry to the end. */
  readonly #entries = new Map<string, DedupEntry>();
  #linesInFile = 0;
  #writing: Promise<void> = Promise.resolve();

  constructor(path: string, maxEntries: number) {
    this.#path = path;
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Reads the file if there is one. Lines that do not parse (a write cut short by a crash) are skipped. */
  async load(): Promise<void> {
    let stream;
    try {
      stream = createReadStream(this.#path, 'utf8');
      await new Promise<void>((resolve, reject) => {
        stream!.once('open', () => resolve());
        stream!.once('error', reject);
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      this.#linesInFile += 1;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue;
      }
      const { d, u, t, i } = parsed as Record<string, unknown>;
      if (typeof d !== 'string' || typeof u !== 'string' || typeof t !== 'string' || typeof i !== 'string') continue;
      this.#put(d, { url: u, date: t, recordId: i });
    }
  }

  lookup(payloadDigest: string): DedupEntry | undefined {
    const entry = this.#entries.get(payloadDigest);
    if (entry !== undefined) {
      this.#entries.delete(payloadDigest);
      this.#entries.set(payloadDigest, entry);
    }
    return entry;
  }

  /**
   * Takes a payload's place as soon as its record is queued, before it is written: records are written in queue
   * order, so a repeat that arrives meanwhile becomes a revisit written after the record it refers to.
   */
  claim(payloadDigest: string, entry: DedupEntry): void {
    this.#put(payloadDigest, entry);
  }

  /** The claimed record could not be written: nothing may refer to it. */
  release(payloadDigest: string, recordId: string): void {
    if (this.#entries.get(payloadDigest)?.recordId === recordId) this.#entries.delete(payloadDigest);
  }

  /** The claimed record is in a WARC file: its line is appended in the background (see flush()). */
  persist(payloadDigest: string, entry: DedupEntry): void {
    const line = `${JSON.stringify({ d: payloadDigest, u: entry.url, t: entry.date, i: entry.recordId })}\n`;
    this.#writing = this.#writing.then(async () => {
      await appendFile(this.#path, line);
      this.#linesInFile += 1;
      if (this.#linesInFile > 2 * this.#maxEntries) await this.#compact();
    });
    // A failed append loses one entry (that payload is stored again after a restart), never a record.
    this.#writing = this.#writing.catch(() => undefined);
  }

  #put(digest: string, entry: DedupEntry): void {
    this.#entries.delete(digest);
    this.#entries.set(digest, entry);
    if (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }

  async #compact(): Promise<void> {
    let text = '';
    for (const [d, e] of this.#entries) text += `${JSON.stringify({ d, u: e.url, t: e.date, i: e.recordId })}\n`;
    const aside = `${this.#path}.compact`;
    await writeFile(aside, text);
    await rename(aside, this.#path);
    this.#linesInFile = this.#entries.size;
  }

  /** Waits for the appends under way. */
  flush(): Promise<void> {
    return this.#writing;
  }
}
