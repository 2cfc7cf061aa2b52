/**
 * What happens to every accepted connection, whichever listener accepted it: a client record, the connection caps
 * (503 past them, written without parsing a byte), the `clientConnected` hook, and only then the hand-over to the
 * HTTP machinery. Moved out of core/proxy.ts so that each listener is only a way of accepting sockets.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ResolvedProxyOptions } from '../config/options.js';
import type { ClientInfo } from '../core/connection.js';
import { publishClientConnect } from '../core/diagnostics.js';
import { ProxyError } from '../core/errors.js';
import type { HookRunner } from '../core/hook-runner.js';
import type { ConnectionPlace, OpenConnection } from '../core/runtime.js';
import type { ListenerContext } from '../core/listener.js';
import { LiveList, type LiveEntry } from '../core/live-list.js';
import { closeSoon, errorResponse, writeRawResponse } from '../http/error-response.js';

export interface AdmissionCounters {
  connectionsAccepted: number;
  connectionsRefused: number;
}

/** An admitted connection: its record, and what closes it (its socket, or what took the socket's place). */
export class AdmittedClient implements ConnectionPlace {
  constructor(
    readonly info: ClientInfo,
    public connection: OpenConnection,
  ) {}
}

/**
 * An admitted socket's record and place, kept on the socket itself and not in a WeakMap keyed by it: a WeakMap value
 * that reaches its own key keeps the key alive through V8's scavenges, so every closed connection's socket was
 * promoted to the old generation (`npm run bench:pair -- <that build> . newconn`: the WeakMap version cost 1.10). A
 * property is also one load where runtime.clientInfo() asks for every request.
 */
const placeKey = Symbol('getaway.admittedPlace');

interface WithPlace {
  [placeKey]?: AdmittedClient;
}

export class ClientAdmission {
  /** Client connections open now, from every listener. */
  readonly clients = new LiveList<AdmittedClient>();
  readonly #byAddress = new Map<string, number>();
  readonly #options: ResolvedProxyOptions;
  readonly #logger: Logger;
  readonly #hooks: HookRunner;
  readonly #counters: AdmissionCounters;
  #nextId = 1;

  constructor(options: ResolvedProxyOptions, logger: Logger, hooks: HookRunner, counters: AdmissionCounters) {
    this.#options = options;
    this.#logger = logger;
    this.#hooks = hooks;
    this.#counters = counters;
  }

  /** The record of a client connection (also of the decrypted socket of an intercepted one, see alias()). */
  clientOf(socket: Socket): ClientInfo | undefined {
    return (socket as WithPlace)[placeKey]?.info;
  }

  /** Where an admitted connection counts (see ConnectionPlace); for an alias, the connection it was terminated on. */
  placeOf(socket: Socket): ConnectionPlace | undefined {
    return (socket as WithPlace)[placeKey];
  }

  /** `inner` (a TLS socket terminated on top of `outer`) belongs to the same client, and counts as its connection. */
  alias(inner: Socket, outer: Socket): void {
    const admitted = (outer as WithPlace)[placeKey];
    if (admitted !== undefined) (inner as WithPlace)[placeKey] = admitted;
  }

  /** Records, caps and admits a connection; `handOver` gets it once `clientConnected` let it in. */
  admit(socket: Socket, context: ListenerContext, handOver: (socket: Socket) => void): void {
    const local = context.local ?? { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
    const info: ClientInfo = {
      id: this.#nextId++,
      remoteAddress: context.client?.address ?? socket.remoteAddress ?? '',
      remotePort: context.client?.port ?? socket.remotePort ?? 0,
      localAddress: local.address,
      localPort: local.port,
      connectedAt: Date.now(),
      listener: context.listener,
      destination: context.destination,
      proxyProtocol: context.proxyProtocol,
    };
    const admitted = new AdmittedClient(info, socket);
    (socket as WithPlace)[placeKey] = admitted;
    const tracked = this.clients.add(admitted);
    publishClientConnect(info);
    const fromAddress = (this.#byAddress.get(info.remoteAddress) ?? 0) + 1;
    this.#byAddress.set(info.remoteAddress, fromAddress);
    socket.on('close', this.#closed(tracked, info.remoteAddress));
    const { maxConnections, maxConnectionsPerClient } = this.#options;
    if (this.clients.size > maxConnections || fromAddress > maxConnectionsPerClient) {
      this.#refuseOverLimit(socket, info, this.clients.size > maxConnections ? `more than ${maxConnections} client connections` : `more than ${maxConnectionsPerClient} connections from ${info.remoteAddress}`);
      return;
    }
    this.#counters.connectionsAccepted++;
    const refuse = (err: unknown): void => {
      this.#logger.info({ err, client: info.id, remoteAddress: info.remoteAddress }, 'client refused by clientConnected');
      socket.destroy();
    };
    let pending: Promise<void> | undefined;
    try {
      pending = this.#hooks.run('clientConnected', info);
    } catch (err) {
      refuse(err);
      return;
    }
    if (pending === undefined) {
      handOver(socket);
      return;
    }
    // Until admitted nobody reads the socket; an error meanwhile must not go unheard.
    const onEarlyError = (err: Error): void => this.#logger.debug({ err, client: info.id }, 'client socket error before admission');
    socket.on('error', onEarlyError);
    pending.then(
      () => {
        socket.removeListener('error', onEarlyError);
        if (!socket.destroyed) handOver(socket);
      },
      refuse,
    );
  }

  /**
   * The connection's 'close' listener, made here and not in admit(): a closure there would share admit()'s context,
   * which holds the socket, and a tunnel the kernel moves keeps this listener after it let go of its socket.
   */
  #closed(tracked: LiveEntry, remoteAddress: string): () => void {
    return () => {
      tracked.remove();
      const left = (this.#byAddress.get(remoteAddress) ?? 1) - 1;
      if (left === 0) this.#byAddress.delete(remoteAddress);
      else this.#byAddress.set(remoteAddress, left);
    };
  }

  /**
   * Past a connection cap the client still gets an answer it can act on (503 + Retry-After), written without
   * parsing its request, then the connection closes.
   */
  #refuseOverLimit(socket: Socket, info: ClientInfo, reason: string): void {
    this.#counters.connectionsRefused++;
    this.#logger.warn({ client: `${info.remoteAddress}:${info.remotePort}`, reason }, `connection refused: ${reason}`);
    socket.on('error', (err) => this.#logger.debug({ err, client: info.id }, 'refused client socket error'));
    // A redirected client never spoke to a proxy: an HTTP answer would be garbage in its stream.
    if (info.destination !== undefined) {
      socket.destroy();
      return;
    }
    writeRawResponse(socket, errorResponse(new ProxyError('connection_limit_reached', reason), true));
    closeSoon(socket);
  }
}
