/**
 * An ordered list of header fields that keeps what the wire had: order, the sender's case, and repeated fields
 * (two Set-Cookie lines stay two lines). Names compare case-insensitively. Built straight from Node's flat
 * `rawHeaders` array and written back in the same flat form, so no map is built on the hot path.
 */
export class HeaderList {
  /** Flat [name, value, name, value, …], the shape of `IncomingMessage.rawHeaders`. */
  #raw: string[];

  constructor(raw: readonly string[] = []) {
    this.#raw = raw.slice();
  }

  static fromPairs(pairs: Iterable<readonly [string, string]>): HeaderList {
    const list = new HeaderList();
    for (const [name, value] of pairs) list.append(name, value);
    return list;
  }

  get size(): number {
    return this.#raw.length / 2;
  }

  has(name: string): boolean {
    return this.#indexOf(name, 0) !== -1;
  }

  /** The first value of `name`, as received. */
  get(name: string): string | undefined {
    const i = this.#indexOf(name, 0);
    return i === -1 ? undefined : this.#raw[i + 1];
  }

  getAll(name: string): string[] {
    const values: string[] = [];
    for (let i = this.#indexOf(name, 0); i !== -1; i = this.#indexOf(name, i + 2)) values.push(this.#raw[i + 1]!);
    return values;
  }

  /** Every value of a list-based field (RFC 9110 §5.6.1), split on commas and trimmed, lower-cased. */
  getTokens(name: string): string[] {
    const tokens: string[] = [];
    for (const value of this.getAll(name)) {
      for (const part of value.split(',')) {
        const token = part.trim().toLowerCase();
        if (token !== '') tokens.push(token);
      }
    }
    return tokens;
  }

  /** Replaces the first field named `name` in place (keeping its position) and removes the others; appends if absent. */
  set(name: string, value: string): void {
    const first = this.#indexOf(name, 0);
    if (first === -1) {
      this.#raw.push(name, value);
      return;
    }
    this.#raw[first + 1] = value;
    for (let i = this.#indexOf(name, first + 2); i !== -1; i = this.#indexOf(name, i)) this.#raw.splice(i, 2);
  }

  append(name: string, value: string): void {
    this.#raw.push(name, value);
  }

  /** Returns how many fields were removed. */
  delete(name: string): number {
    let removed = 0;
    for (let i = this.#indexOf(name, 0); i !== -1; i = this.#indexOf(name, i)) {
      this.#raw.splice(i, 2);
      removed++;
    }
    return removed;
  }

  /** Removes, in one pass, every field whose lower-cased name `drop` accepts. Returns how many were removed. */
  deleteWhere(drop: (lowerCaseName: string) => boolean): number {
    const raw = this.#raw;
    let kept = 0;
    for (let i = 0; i < raw.length; i += 2) {
      if (drop(raw[i]!.toLowerCase())) continue;
      raw[kept] = raw[i]!;
      raw[kept + 1] = raw[i + 1]!;
      kept += 2;
    }
    const removed = (raw.length - kept) / 2;
    raw.length = kept;
    return removed;
  }

  *entries(): IterableIterator<[string, string]> {
    for (let i = 0; i < this.#raw.length; i += 2) yield [this.#raw[i]!, this.#raw[i + 1]!];
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** The flat array form that `http.request({ headers })` and `res.writeHead()` accept. */
  toRaw(): string[] {
    return this.#raw.slice();
  }

  clone(): HeaderList {
    return new HeaderList(this.#raw);
  }

  toJSON(): Array<[string, string]> {
    return [...this.entries()];
  }

  #indexOf(name: string, from: number): number {
    const raw = this.#raw;
    const wanted = name.toLowerCase();
    for (let i = from; i < raw.length; i += 2) {
      const candidate = raw[i]!;
      if (candidate.length === wanted.length && candidate.toLowerCase() === wanted) return i;
    }
    return -1;
  }
}
