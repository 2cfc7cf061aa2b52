/**
 * The listener seam: a listener accepts connections (explicit proxy port, a transparent port, a PROXY-protocol
 * front) and hands each socket to the proxy with what it knows about it. Admission (caps, `clientConnected`), the
 * client record and the HTTP machinery are the same for every listener, so a new kind of listener is only this.
 */
import type { AddressInfo, Socket } from 'node:net';

/** What a listener knows about a connection it accepted, beyond what the socket itself says. */
export interface ListenerContext {
  /** The listener's name, recorded on the client ("explicit", "transparent", …). */
  readonly listener: string;
  /**
   * The socket's local address when the listener knows it without asking the kernel (bound to one address);
   * otherwise the socket is asked.
   */
  readonly local?: { readonly address: string; readonly port: number } | undefined;
  /** The real client when the socket's peer is not it (a balancer that sent a PROXY protocol header). */
  readonly client?: { readonly address: string; readonly port: number } | undefined;
  /**
   * Where the client meant to connect, when the listener knows it (traffic redirected to a transparent
   * listener): requests in origin form on this connection go there.
   */
  readonly destination?: { readonly host: string; readonly port: number } | undefined;
  /** The PROXY protocol header the connection began with, when a listener read one (its TLVs, its version). */
  readonly proxyProtocol?: ProxyProtocolInfo | undefined;
}

/** What a PROXY protocol header said, as ClientInfo keeps it. */
export interface ProxyProtocolInfo {
  readonly version: 1 | 2;
  /** "local": a balancer's own connection (health check): the socket's peer stands for itself. */
  readonly command: 'proxy' | 'local';
  /** v2 type-length-value extensions: ALPN 0x01, authority 0x02, unique id 0x05, SSL 0x20 … */
  readonly tlvs: ReadonlyArray<{ readonly type: number; readonly value: Buffer }>;
}

/** Called by a listener for every connection it accepted, at once, before reading anything from it. */
export type AcceptConnection = (socket: Socket, context: ListenerContext) => void;

export interface Listener {
  readonly name: string;
  /** Starts accepting; resolves with the bound address. */
  listen(accept: AcceptConnection): Promise<AddressInfo>;
  /** Stops accepting; connections already handed over are the proxy's to close. */
  close(): Promise<void>;
}
