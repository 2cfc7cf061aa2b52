/**
 * The keep-alive agent for plain-HTTP origins, whose sockets read into one buffer shared by all of them (Node's
 * `onread`) and hand each read to node:http's response parser as a view of it.
 *
 * Why: a stream read allocates a fresh 64 KiB buffer in C++ per read, shrinks it to the bytes read and wraps it in
 * a Buffer, and the parser then copies every body chunk out of it again: on the 64 MiB GET the garbage collector
 * took 18 % of the proxy's CPU (`npm run bench:profile -- get64m`). The parser never keeps the bytes it is given: it
 * copies body chunks into Buffers of their own and header fragments before execute() returns (Node reads the
 * server side of the same parser from reused buffers), so the shared buffer may be overwritten by the next read.
 * Only this agent's sockets, which carry nothing but responses to requests: upgrades dial their own connection,
 * and the bytes after a 101 (the one place node:http hands out a slice of what it was given) never come here.
 */
import { Agent, type AgentOptions } from 'node:http';
import { connect, type NetConnectOpts, type Socket } from 'node:net';

const READ_SIZE = 65536;
const sharedReadBuffer = Buffer.allocUnsafe(READ_SIZE);

export class SharedReadAgent extends Agent {
  constructor(options: AgentOptions) {
    super(options);
  }

  /** What http.Agent calls for each new connection (net.createConnection by default). */
  override createConnection(options: NetConnectOpts): Socket {
    const socket: Socket = connect({
      ...options,
      onread: {
        buffer: sharedReadBuffer,
        // node:http reads its sockets through 'data' (socketOnData runs the parser), synchronously per read.
        callback: (bytes, buffer) => socket.emit('data', Buffer.from(buffer.buffer, buffer.byteOffset, bytes)) || true,
      },
    } as NetConnectOpts);
    return socket;
  }
}
