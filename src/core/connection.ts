import type { ProxyProtocolInfo } from './listener.js';

/** Facts about one client connection, shared by every flow that arrives on it. */
export interface ClientInfo {
  /** Unique per proxy process, in accept order. */
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Epoch milliseconds. */
  readonly connectedAt: number;
  /** Which listener accepted it ("explicit" for the proxy port, or a listener given in `listeners`). */
  readonly listener: string;
  /** Where the client meant to connect, when its listener knows (see ListenerContext.destination). */
  readonly destination: { readonly host: string; readonly port: number } | undefined;
  /** The PROXY protocol header it came with (the addresses above are already the real client's). */
  readonly proxyProtocol?: ProxyProtocolInfo | undefined;
}
