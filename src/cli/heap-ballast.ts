/**
 * 8 MiB of doubles held for the process's life, so that V8's old generation never looks nearly empty. V8 starts
 * marking the whole heap when the room left under the old generation's limit (set at each mark-compact to a few
 * times what survived it) is smaller than the young generation. getaway's live old generation is about 8 MB, and
 * once small requests have grown the young generation to its 16 MiB semi-spaces, that room is always too small:
 * nearly every scavenge that node:http's per-read body Buffers set off (V8 scavenges for external memory pressure)
 * was followed by a mark-compact (docs/performance.md, "Round two, ninth session"). With this ballast the limit after a
 * mark-compact is far enough above the live size. Doubles, so marking never looks inside the array; the CLI only:
 * an embedding application sizes its own heap. That is how V8 11 and 12 (Node 20 and 22) decide; V8 13 (Node 24)
 * also starts marking for every 64 MB or so of new memory outside the heap, which no ballast changes.
 */
let ballast: number[] | undefined;

export function holdHeapBallast(bytes = 8 * 1024 * 1024): void {
  ballast ??= new Array<number>(bytes / 8).fill(0.5);
}
