/**
 * The things in progress (flows, client and upstream sockets, splices), in the order they started, with O(1)
 * removal through the entry `add()` returns.
 *
 * A linked list and not a Set, on purpose: one long-lived Set that every request's flow (or every dial) was added
 * to and deleted from made V8 promote each request's objects to the old generation, so scavenges slowed and
 * mark-compacts followed. `BENCH_GC=1 npm run bench:pair -- <checkout before> . keepalive` measured 5.8–6.5 MB
 * promoted per 1,000 requests before this list and 0.17–0.23 with it (docs/performance.md).
 */
export interface LiveEntry {
  /** Takes the value out of the list; false if it was already out. */
  remove(): boolean;
}

class Node<T> implements LiveEntry {
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
  #list: LiveList<T> | undefined;

  constructor(
    readonly value: T,
    list: LiveList<T>,
  ) {
    this.#list = list;
  }

  remove(): boolean {
    const list = this.#list;
    if (list === undefined) return false;
    this.#list = undefined;
    list.unlink(this);
    return true;
  }
}

export class LiveList<T> {
  #head: Node<T> | undefined;
  #tail: Node<T> | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(value: T): LiveEntry {
    const node = new Node(value, this);
    node.prev = this.#tail;
    if (this.#tail === undefined) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
    this.#size++;
    return node;
  }

  /** A copy, in insertion order: callers may remove entries (or have them removed) while they go through it. */
  values(): T[] {
    const out: T[] = [];
    for (let node = this.#head; node !== undefined; node = node.next) out.push(node.value);
    return out;
  }

  some(predicate: (value: T) => boolean): boolean {
    for (let node = this.#head; node !== undefined; node = node.next) if (predicate(node.value)) return true;
    return false;
  }

  /** @internal Called by an entry's remove(). */
  unlink(node: Node<T>): void {
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev;
    else node.next.prev = node.prev;
    // Unlinked both ways, so a removed entry keeps nothing else alive.
    node.prev = undefined;
    node.next = undefined;
    this.#size--;
  }
}
