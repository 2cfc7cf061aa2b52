/**
 * The keep-alive agent for plain-HTTP origins, whose sockets read (Node's `onread`) into the buffer every such
 * reader shares (core/shared-read-buffer.ts) and hand each read to node:http's response parser as a view of it.
 *
 * Why: a stream read allocates a fresh 64 KiB buffer in C++ per read, shrinks it to the bytes read and wraps it in
 * a Buffer, and the parser then copies every body chunk out of it again: on the 64 MiB GET the garbage collector
 * took 18 % of the proxy's CPU (`npm run bench:profile -- get64m`). The parser never keeps the bytes it is given: it
 * copies body chunks into Buffers of their own and header fragments before execute() returns (Node reads the
 * server side of the same parser from reused buffers), so the shared buffer may be overwritten by the next read.
 * Only this agent's sockets, which carry nothing but responses to requests: upgrades dial their own connection,
 * and the bytes after a 101 (the one place node:http hands out a slice of what it was given) never come here.
 */
import { Agent } from 'node:http';
import { connect, type NetConnectOpts, type Socket } from 'node:net';
import { sharedReadBuffer } from '../core/shared-read-buffer.js';

/**
 * node:http attaches the bytes it could not parse to its error (`rawPacket`); from this agent's sockets they are a
 * view of the shared buffer, good only until the next read. Called where the error is first seen (synchronously
 * from the read that failed), it gives the error a copy of its own, for hooks and logs that look later.
 */
export function ownRawPacket(err: Error): void {
  const withPacket = err as Error & { rawPacket?: unknown };
  if (Buffer.isBuffer(withPacket.rawPacket)) withPacket.rawPacket = Buffer.from(withPacket.rawPacket);
}

export class SharedReadAgent extends Agent {
  /** What http.Agent calls for each new connection (net.createConnection by default). */
  override createConnection(options: NetConnectOpts): Socket {
    const socket: Socket = connect({
      ...options,
      onread: {
        buffer: sharedReadBuffer,
        // node:http reads its sockets through 'data' (socketOnData runs the parser), synchronously per read.
        callback: (bytes) => {
          socket.emit('data', sharedReadBuffer.subarray(0, bytes));
          return true;
        },
      },
    } as NetConnectOpts);
    return socket;
  }
}
