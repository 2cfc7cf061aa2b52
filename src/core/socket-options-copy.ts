/**
 * Works around a V8 (Node 20) slow path that cost every new connection about a quarter of its CPU.
 *
 * net.Socket's constructor copies its options with a spread (`options = { ...options }`) and then adds fields
 * to the copy. While that spread's inline cache holds four or fewer shapes, V8 copies with a "fast clone" whose
 * result map, for a source with other than four in-object fields (the accept path's literal has seven), is detached
 * from any transition tree. Each field added afterwards then makes a brand-new map, so every property access on the
 * options in the Duplex, Readable and Writable constructors misses its cache and goes to the runtime, for every
 * socket. Once the spread has seen more shapes its cache turns megamorphic, V8 copies property by property onto
 * shared maps, and those accesses hit. (Node's own minimal proxy gets there by accident, with the http agent's
 * several option shapes; getaway's few sockets never did.)
 *
 * Found with `node --log-ic` (the same property loads missing on a new map per connection) and measured with
 * `npm run bench:pair -- . . newconn|setup|keepalive`, B started with a module doing this
 * (`BENCH_NODE_ARGS_B='--import=…'`): 0.78, 0.72 and 0.99 of the CPU per operation.
 * docs/performance.md ("new connections") has the runs. A V8 without the slow path loses nothing: the megamorphic
 * copy is what a spread of many shapes costs anyway.
 */
import { Socket } from 'node:net';

/** Distinct shapes to give the spread: one more than a polymorphic inline cache holds, and a margin. */
const SHAPES = 6;
/** V8 gives a function its feedback (and the spread its cache) only after a few calls; these are plenty. */
const CALLS = 48;

let done = false;

/** Makes the spread in net.Socket's constructor megamorphic, once per process, with throwaway unconnected sockets. */
export function useGenericSocketOptionsCopy(): void {
  if (done) return;
  done = true;
  for (let i = 0; i < CALLS; i++) {
    const options: Record<string, unknown> = { allowHalfOpen: false };
    options[`getawayShape${i % SHAPES}`] = i;
    new Socket(options).destroy();
  }
}
