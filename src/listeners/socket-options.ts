/**
 * The native piece (native/socket_options.c, built by `npm install` on Linux) behind transparent listeners. Loaded
 * only when a transparent listener starts, so a machine where it could not be built runs everything else as usual,
 * and `--transparent` says precisely why it cannot.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Server, Socket } from 'node:net';

export interface SocketAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

interface NativeSocketOptions {
  setTransparent(fd: number): void;
  originalDestination(fd: number): SocketAddress;
}

export interface SocketOptions {
  /** IP_TRANSPARENT (IPV6_TRANSPARENT) on a listening server: TPROXY may hand it other hosts' connections. */
  setTransparent(server: Server): void;
  /** Where a connection rewritten by REDIRECT/DNAT was going (SO_ORIGINAL_DST from conntrack). */
  originalDestination(socket: Socket): SocketAddress;
}

/** Thrown when transparent mode cannot run here; the message says why and what to do. */
export class TransparentUnavailableError extends Error {
  override readonly name = 'TransparentUnavailableError';
}

const ADDON = '../../../build/Release/getaway_socket_options.node';

let loaded: SocketOptions | undefined;

/**
 * Node keeps the file descriptor on its internal handle (`_handle.fd`, on Unix, for TCP handles since Node 0.x);
 * it is not public API, so its absence is reported rather than assumed. test/transparent/ fails if it goes.
 */
function descriptorOf(what: Server | Socket): number {
  const fd = (what as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new TransparentUnavailableError('this Node.js does not expose the socket file descriptor transparent mode needs');
  return fd;
}

export function loadSocketOptions(): SocketOptions {
  if (loaded !== undefined) return loaded;
  if (process.platform !== 'linux') {
    throw new TransparentUnavailableError(`transparent mode needs Linux (TPROXY or REDIRECT); this is ${process.platform}`);
  }
  const path = fileURLToPath(new URL(ADDON, import.meta.url));
  if (!existsSync(path)) {
    throw new TransparentUnavailableError(
      `transparent mode needs the native socket options module, which was not built (${path} is missing): ` +
        'install a C compiler, make and python3, then run `npm rebuild getaway` (docs/transparent.md)',
    );
  }
  let native: NativeSocketOptions;
  try {
    native = createRequire(import.meta.url)(path) as NativeSocketOptions;
  } catch (err) {
    throw new TransparentUnavailableError(`the native socket options module would not load (${(err as Error).message}): run \`npm rebuild getaway\``);
  }
  loaded = {
    setTransparent: (server) => native.setTransparent(descriptorOf(server)),
    originalDestination: (socket) => native.originalDestination(descriptorOf(socket)),
  };
  return loaded;
}
