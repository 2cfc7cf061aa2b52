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
}
