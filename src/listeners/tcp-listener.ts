/**
 * A plain TCP listener: the explicit proxy port, and the base other listeners wrap. Half-open sockets are allowed
 * (tunnels need half-close) and Nagle is off.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { AcceptConnection, Listener, ListenerContext } from '../core/listener.js';

const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/** Binds `server`, rejecting with the bind error (EADDRINUSE, EACCES) instead of emitting it. */
export function bindServer(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}

export class TcpListener implements Listener {
  readonly name: string;
  readonly #host: string;
  readonly #port: number;
  #server: Server | undefined;

  constructor(name: string, host: string, port: number) {
    this.name = name;
    this.#host = host;
    this.#port = port;
  }

  address(): AddressInfo | null {
    const address = this.#server?.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  async listen(accept: AcceptConnection): Promise<AddressInfo> {
    if (this.#server !== undefined) throw new Error(`listener ${this.name} is already listening`);
    let context: ListenerContext = { listener: this.name };
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => accept(socket, context));
    this.#server = server;
    await bindServer(server, this.#host, this.#port);
    const bound = this.address()!;
    // Bound to one address, every accepted socket has that local address and port: no getsockname() per connection.
    if (!UNSPECIFIED.has(bound.address)) context = { listener: this.name, local: { address: bound.address, port: bound.port } };
    return bound;
  }

  /** Errors after listen() (EMFILE and the like) go to `onError`; the listener keeps accepting. */
  onError(onError: (err: Error) => void): void {
    this.#server?.on('error', onError);
  }

  close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
