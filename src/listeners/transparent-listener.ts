/**
 * A listener for traffic Linux redirected to getaway, so clients need no proxy settings:
 *   tproxy:   nftables/iptables TPROXY delivers the connection unchanged; its local address is where the client
 *             was going (the listening socket carries IP_TRANSPARENT so the kernel may hand it such connections);
 *   redirect: REDIRECT/DNAT rewrote the destination to this listener; conntrack remembers the original one, read
 *             with SO_ORIGINAL_DST.
 * Each accepted connection is handed on with that destination in its context; the proxy then tells HTTP from TLS
 * from anything else by the first bytes (transparent/redirected-connection.ts). docs/transparent.md has the rules.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { canonicalIp } from '../core/addresses.js';
import type { AcceptConnection, Listener } from '../core/listener.js';
import { loadSocketOptions, TransparentUnavailableError, type SocketOptions } from './socket-options.js';
import { bindServer } from './tcp-listener.js';

export type TransparentMode = 'tproxy' | 'redirect';

export interface TransparentListenerOptions {
  host: string;
  port: number;
  mode: TransparentMode;
  /** The listener's name on flows (`flow.client.listener`). Default "transparent". */
  name?: string;
  /** Told of every connection closed here without being handed on (no original destination, or a direct one). */
  onRefused?: (reason: string, peer: string) => void;
  /** Errors after listen() (EMFILE and the like); the listener keeps accepting. */
  onError?: (err: Error) => void;
}

export class TransparentListener implements Listener {
  readonly name: string;
  readonly mode: TransparentMode;
  readonly #host: string;
  readonly #port: number;
  readonly #onRefused: ((reason: string, peer: string) => void) | undefined;
  readonly #onError: ((err: Error) => void) | undefined;
  #server: Server | undefined;

  constructor(options: TransparentListenerOptions) {
    this.name = options.name ?? 'transparent';
    this.mode = options.mode;
    this.#host = options.host;
    this.#port = options.port;
    this.#onRefused = options.onRefused;
    this.#onError = options.onError;
  }

  address(): AddressInfo | null {
    const address = this.#server?.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  async listen(accept: AcceptConnection): Promise<AddressInfo> {
    if (this.#server !== undefined) throw new Error(`listener ${this.name} is already listening`);
    // Loaded here, not at import: without the native piece only this listener fails, with the reason.
    const sockets = loadSocketOptions();
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (socket) => this.#receive(socket, sockets, accept));
    this.#server = server;
    await bindServer(server, this.#host, this.#port);
    if (this.mode === 'tproxy') {
      try {
        sockets.setTransparent(server);
      } catch (err) {
        await this.close();
        const code = (err as NodeJS.ErrnoException).code;
        const hint = code === 'EPERM' ? ' (needs CAP_NET_ADMIN: run as root or grant it, e.g. setcap cap_net_admin+ep on node)' : '';
        throw new TransparentUnavailableError(`${this.#host}:${this.#port}: cannot set IP_TRANSPARENT for tproxy mode: ${(err as Error).message}${hint}`);
      }
    }
    server.on('error', (err) => this.#onError?.(err));
    return this.address()!;
  }

  #receive(socket: Socket, sockets: SocketOptions, accept: AcceptConnection): void {
    const peer = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    let destination: { address: string; port: number };
    const local = { address: canonicalIp(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
    if (this.mode === 'tproxy') destination = local;
    else {
      try {
        const original = sockets.originalDestination(socket);
        destination = { address: canonicalIp(original.address), port: original.port };
      } catch (err) {
        this.#refuse(socket, `no original destination (${(err as Error).message}); was the connection redirected?`, peer);
        return;
      }
    }
    // A connection straight to this port (nothing redirected it) would be forwarded to the proxy itself.
    const bound = this.address();
    if (bound !== null && destination.port === bound.port && destination.address === local.address) {
      this.#refuse(socket, `connected to the transparent port ${destination.address}:${destination.port} directly; only redirected traffic is served here`, peer);
      return;
    }
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; logs and rules see a.b.c.d.
    const client = { address: canonicalIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
    accept(socket, { listener: this.name, local, client, destination: { host: destination.address, port: destination.port } });
  }

  #refuse(socket: Socket, reason: string, peer: string): void {
    this.#onRefused?.(reason, peer);
    socket.destroy();
  }

  close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
