/**
 * A listener behind a load balancer that speaks the PROXY protocol (v1 or v2): it wraps another listener, refuses
 * connections from peers that are not trusted balancers, reads the header before anything else, and hands the
 * connection on with the real client in its context, so logs, rules, limits and `allowClients` see that client.
 * A malformed header, or none within the timeout, closes the connection.
 */
import type { AddressInfo, Socket } from 'node:net';
import { AddressRanges } from '../core/addresses.js';
import type { AcceptConnection, Listener, ListenerContext } from '../core/listener.js';
import { MAX_HEADER_BYTES, parseProxyProtocol, type ProxyProtocolHeader } from './proxy-protocol.js';

export interface ProxyProtocolOptions {
  /** Balancer addresses or CIDRs allowed to send the header; a connection from anywhere else is closed at once. */
  trusted: readonly string[];
  /** How long a balancer has to send the header. Default 5 s (HAProxy's own `timeout client` is usually longer). */
  headerTimeoutMs?: number;
  /** Told of every connection refused here (untrusted peer, bad header), for the log. */
  onRefused?: (reason: string, peer: string) => void;
}

export class ProxyProtocolListener implements Listener {
  readonly name: string;
  readonly #inner: Listener;
  readonly #trusted: AddressRanges;
  readonly #timeoutMs: number;
  readonly #onRefused: ((reason: string, peer: string) => void) | undefined;

  constructor(inner: Listener, options: ProxyProtocolOptions) {
    this.name = inner.name;
    this.#inner = inner;
    this.#trusted = new AddressRanges(options.trusted);
    this.#timeoutMs = options.headerTimeoutMs ?? 5000;
    this.#onRefused = options.onRefused;
  }

  listen(accept: AcceptConnection): Promise<AddressInfo> {
    return this.#inner.listen((socket, context) => this.#receive(socket, context, accept));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  #receive(socket: Socket, context: ListenerContext, accept: AcceptConnection): void {
    const peer = socket.remoteAddress ?? '';
    if (!this.#trusted.has(peer)) {
      this.#refuse(socket, `${peer} is not a trusted PROXY protocol sender`, peer);
      return;
    }
    let received: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => this.#refuse(socket, `no PROXY protocol header within ${this.#timeoutMs} ms`, peer), this.#timeoutMs);
    const stop = (): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
    };
    const onError = (): void => stop();
    const onClose = (): void => stop();
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const result = parseProxyProtocol(received);
      if (result.kind === 'incomplete') {
        if (received.length > MAX_HEADER_BYTES) {
          stop();
          this.#refuse(socket, 'PROXY protocol header too long', peer);
        }
        return;
      }
      stop();
      if (result.kind === 'invalid') {
        this.#refuse(socket, result.reason, peer);
        return;
      }
      // Nothing past the header is ours: it goes back to the socket, which stays paused until admission hands it on.
      socket.pause();
      if (received.length > result.length) socket.unshift(received.subarray(result.length));
      accept(socket, withHeader(context, result.header));
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  }

  #refuse(socket: Socket, reason: string, peer: string): void {
    this.#onRefused?.(reason, peer);
    socket.destroy();
  }
}

function withHeader(context: ListenerContext, header: ProxyProtocolHeader): ListenerContext {
  if (header.command === 'local' || header.source === undefined) return { ...context, proxyProtocol: header };
  // The balancer's destination is the address the client connected to: it is this connection's local end.
  return { ...context, client: header.source, local: header.destination, proxyProtocol: header };
}
