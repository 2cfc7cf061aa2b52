/**
 * createProxy(): wires the listener, the addons and the lifecycle (listen, graceful close). It decides nothing
 * about requests itself; that is the handlers' and the addons' job.
 */
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent, type Server as HttpServer } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { setMaxListeners } from 'node:events';
import { pino, type Logger } from 'pino';
import { resolveProxyOptions, type ProxyOptions, type ResolvedProxyOptions } from '../config/options.js';
import { PROXY_NAME } from '../http/error-response.js';
import { ClientAdmission } from '../listeners/client-admission.js';
import { createExplicitListener } from '../listeners/explicit-listener.js';
import { formatProxyProtocolV1, formatProxyProtocolV2 } from '../listeners/proxy-protocol.js';
import { ProxyProtocolListener } from '../listeners/proxy-protocol-listener.js';
import { TcpListener } from '../listeners/tcp-listener.js';
import { TransparentListener } from '../listeners/transparent-listener.js';
import { DestinationNames } from '../transparent/destination-names.js';
import { serveRedirected } from '../transparent/redirected-connection.js';
import { OriginPool } from '../upstream/origin-pool.js';
import type { ProxyAuth } from '../addons/proxy-auth.js';
import { accessAddons, openProxyProblem } from '../config/access-options.js';
import { interceptionPolicy, MitmPolicy } from '../mitm/mitm-policy.js';
import { IdleSweep } from '../tunnel/idle-sweep.js';
import { DirectDialer, GuardedResolver } from '../upstream/dialer.js';
import { RouteAgents } from '../upstream/route-agents.js';
import { RoutePlanner } from '../upstream/route-planner.js';
import { describeSelfAddresses, isSelfTarget, type SelfAddresses } from '../upstream/self-target.js';
import type { AddonContext } from './addon.js';
import { isLoopbackHost } from './addresses.js';
import type { ClientInfo } from './connection.js';
import type { DestinationGuard } from './destination.js';
import { ProxyError, type ProxyErrorType } from './errors.js';
import { activeEntry, type Flow } from './flow.js';
import type { AcceptConnection, Listener } from './listener.js';
import { LiveList } from './live-list.js';
import { HookRunner } from './hook-runner.js';
import { publishFlow } from './diagnostics.js';
import type { ConnectionPlace, Interception } from './runtime.js';
import type { MitmRuntime } from '../mitm/mitm-runtime.js';
import type { ProxyRuntime } from '../runtime.js';
import { useGenericSocketOptionsCopy } from './socket-options-copy.js';
import { originTrust, type OriginTlsOptions } from '../upstream/origin-tls.js';

/**
 * Origins commonly drop idle keep-alive connections after 5 s (Node's own default); giving pooled sockets up a
 * little earlier avoids most "reused a socket the origin just closed" failures.
 */
const POOLED_SOCKET_IDLE_MS = 4000;

/** How long a just-accepted connection gets to send its first request once shutdown has begun. */
const FRESH_CONNECTION_MS = 250;

export interface Proxy {
  /** Starts listening; resolves with the bound address (read the port here when you asked for port 0). */
  listen(): Promise<AddressInfo>;
  /** The bound address (the explicit port's, else the first listener's), or null before listen(). */
  address(): AddressInfo | null;
  /** Every listener's bound address, by listener name ("explicit", "transparent", …); empty before listen(). */
  listening(): Array<AddressInfo & { listener: string }>;
  /** "http://host:port" of the listener, for clients' proxy settings. */
  readonly url: string;
  /**
   * Stops accepting, lets in-flight requests finish within `shutdownGraceMs`, then cuts tunnels and whatever is
   * left, and runs the addons' `done`. Idempotent.
   */
  close(): Promise<void>;
  /** Open sockets the proxy holds: client connections plus tunnel and upgrade connections to origins. */
  readonly connections: number;
  /** Requests and tunnels in progress. */
  readonly activeFlows: number;
  /** Counters since listen(), for health checks and tests (the metrics addon exports richer ones). */
  stats(): ProxyStats;
  /**
   * Re-reads what was configured from files (the htpasswd file of `auth.file`). On a problem the old settings stay
   * and the promise rejects. `getaway serve` calls it on SIGHUP.
   */
  reload(): Promise<void>;
}

export interface ProxyStats {
  connectionsAccepted: number;
  /** Refused at accept: over maxConnections or maxConnectionsPerClient. */
  connectionsRefused: number;
  /** Requests answered with an error before they became flows: malformed, over a size limit. */
  requestsRejected: number;
  flowsCompleted: number;
  /** Flows that ended with an error, by RFC 9209 type. */
  flowErrors: Partial<Record<ProxyErrorType, number>>;
  /** Tunnels and upgraded connections whose bytes the kernel moved (the `kernelSplice` option), since the start. */
  tunnelsInKernel: number;
  /** Plain-HTTP response bodies whose rest the kernel moved from the origin to the client (`kernelSplice`). */
  bodiesInKernel: number;
  /** Plain-HTTP request bodies whose rest the kernel moved from the client to the origin (`kernelSplice`). */
  requestBodiesInKernel: number;
}

export function createProxy(input: ProxyOptions = {}): Proxy {
  const options = resolveProxyOptions(input);
  useGenericSocketOptionsCopy();
  return new ProxyServer(options);
}

class ProxyServer implements Proxy {
  readonly #options: ResolvedProxyOptions;
  readonly #pseudonym = `${PROXY_NAME}-${randomBytes(4).toString('hex')}`;
  readonly #logger: Logger;
  readonly #hooks: HookRunner;
  readonly #upstreamSockets = new LiveList<ConnectionPlace>();
  /** Open splices (tunnels, upgrades): idle ones are ended, shutdown cuts them all. */
  readonly #splices: IdleSweep;
  readonly #flows = new LiveList<Flow>();
  readonly #shutdown = new AbortController();
  readonly #httpAgent: HttpAgent;
  readonly #originPool = new OriginPool(POOLED_SOCKET_IDLE_MS);
  readonly #httpsAgent: HttpsAgent;
  readonly #guard: DestinationGuard;
  readonly #dialer: DirectDialer;
  readonly #resolver: GuardedResolver;
  readonly #routes: RoutePlanner;
  readonly #routeAgents: RouteAgents;
  readonly #upstreamProxyHeader: ((client: ClientInfo) => Buffer) | undefined;
  readonly #originTls: OriginTlsOptions;
  readonly #interceptions = new WeakMap<Socket, Interception>();
  readonly #mitmPolicy: MitmPolicy | undefined;
  readonly #auth: ProxyAuth | undefined;
  #mitm: MitmRuntime | undefined;
  /** Every listener's address: a dial to one of them would feed the proxy to itself. */
  #self: SelfAddresses[] = [];
  /** The explicit proxy listener (unless `explicit: false`), the transparent one, then options.listeners. */
  #listeners: Listener[] = [];
  #explicit: TcpListener | undefined;
  /** Each listener's bound address, in listen order. */
  #bound: Array<AddressInfo & { listener: string }> = [];
  readonly #destinationNames: DestinationNames;
  readonly #admission: ClientAdmission;
  #httpServer: HttpServer | undefined;
  #tunnels = 0;
  readonly #stats: ProxyStats = { connectionsAccepted: 0, connectionsRefused: 0, requestsRejected: 0, flowsCompleted: 0, flowErrors: {}, tunnelsInKernel: 0, bodiesInKernel: 0, requestBodiesInKernel: 0 };
  #httpFlowsDrained: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedProxyOptions) {
    this.#options = options;
    this.#logger = options.logger ?? pino({ level: 'silent' });
    // Built-in decisions are default addons ahead of the user's, which see (and may change) what they chose: access
    // control first (config/access-options.ts says in which order), then interception's policy.
    // Exposure (CONNECT ports, private destinations) follows the most exposed listener: a transparent one on
    // 0.0.0.0 serves other hosts even when the explicit port is on loopback.
    const hosts = [...(options.explicit ? [options.host] : []), ...(options.transparent === undefined ? [] : [options.transparent.host])];
    const access = accessAddons(hosts.find((host) => !isLoopbackHost(host)) ?? options.host, options);
    this.#auth = access.auth;
    this.#mitmPolicy = options.mitm === undefined ? undefined : new MitmPolicy(options.mitm.hosts, options.mitm.excludeHosts);
    const builtIn = this.#mitmPolicy === undefined ? access.addons : [...access.addons, interceptionPolicy(this.#mitmPolicy)];
    this.#hooks = new HookRunner([...builtIn, ...options.addons]);
    this.#admission = new ClientAdmission(options, this.#logger, this.#hooks, this.#stats);
    this.#splices = new IdleSweep(options.tunnelIdleTimeoutMs);
    // Every dial in progress listens on the shutdown signal; thousands at once are normal, not a leak.
    setMaxListeners(0, this.#shutdown.signal);
    const agentOptions = { keepAlive: true, scheduling: 'lifo' as const, timeout: POOLED_SOCKET_IDLE_MS };
    this.#originTls = originTrust(options.caBundle, options.insecureUpstreamTls);
    this.#httpAgent = new HttpAgent(agentOptions);
    this.#httpsAgent = new HttpsAgent({ ...agentOptions, ...this.#originTls });
    this.#guard = (ip, port) => {
      if (this.#self.some((self) => isSelfTarget(ip, port, self))) {
        return new ProxyError('proxy_loop_detected', `${ip}:${port} is this proxy's own listening address`, { refusedByProxy: true });
      }
      return undefined;
    };
    this.#resolver = new GuardedResolver(options.resolver);
    this.#resolver.share(this.#guard);
    this.#destinationNames = new DestinationNames((name) => this.#resolver.resolveAll(name));
    this.#dialer = new DirectDialer({ connectTimeoutMs: options.connectTimeoutMs, guard: this.#guard, resolver: this.#resolver });
    this.#routes = new RoutePlanner(options);
    const connect = { connectTimeoutMs: options.connectTimeoutMs, tls: this.#originTls, dialer: this.#dialer, signal: this.#shutdown.signal, via: `1.1 ${this.#pseudonym}` };
    const format = options.upstreamProxyProtocol === undefined ? undefined : options.upstreamProxyProtocol === 'v1' ? formatProxyProtocolV1 : formatProxyProtocolV2;
    // Source: the client; destination: the address it connected to here (what HAProxy's send-proxy says too).
    this.#upstreamProxyHeader = format === undefined
      ? undefined
      : (client) => format({ address: client.remoteAddress, port: client.remotePort }, { address: client.localAddress, port: client.localPort });
    this.#routeAgents = new RouteAgents({ agentOptions, connect, proxyHeader: this.#upstreamProxyHeader });
  }

  get url(): string {
    const address = this.address();
    if (address === null) throw new Error('proxy is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  get connections(): number {
    return this.#admission.clients.size + this.#upstreamSockets.size;
  }

  get activeFlows(): number {
    return this.#flows.size;
  }

  async reload(): Promise<void> {
    await this.#auth?.reload();
  }

  stats(): ProxyStats {
    return { ...this.#stats, flowErrors: { ...this.#stats.flowErrors } };
  }

  address(): AddressInfo | null {
    const first = this.#bound[0];
    return this.#explicit?.address() ?? (first === undefined ? null : { address: first.address, family: first.family, port: first.port });
  }

  listening(): Array<AddressInfo & { listener: string }> {
    return this.#bound.map((entry) => ({ ...entry }));
  }

  async listen(): Promise<AddressInfo> {
    if (this.#httpServer !== undefined) throw new Error('listen() was already called');
    if (this.#options.mitm !== undefined && this.#mitmPolicy !== undefined) {
      // Loaded only when interception is on: with the X.509 library in the start-up heap, V8 ran mark-compacts
      // during bulk tunnels for everyone else (docs/performance.md, "Heap size at start-up").
      const { createMitm } = await import('../mitm/create-mitm.js');
      this.#mitm = await createMitm(this.#options.mitm, this.#mitmPolicy);
    }
    const open = this.#options.explicit ? openProxyProblem(this.#options.host, this.#options) : undefined;
    // The CLI refuses to start like this; a library user may authenticate in an addon of their own, so only warn.
    if (open !== undefined) this.#logger.warn(`no allowClients and no auth: ${open}`);
    if (this.#options.insecureUpstreamTls) {
      this.#logger.warn('insecureUpstreamTls is on: origin TLS certificates are NOT verified; anyone on the path can read and change this traffic');
    }
    const runtime = this.#createRuntime();
    const httpServer = createExplicitListener(runtime);
    // We accept connections ourselves and hand them to the HTTP server once `clientConnected` has admitted them,
    // so an async policy hook runs before a single byte is parsed. Node documents feeding sockets in with
    // emit('connection'); its connection bookkeeping (headersTimeout checks) starts on 'listening'.
    httpServer.emit('listening');
    this.#httpServer = httpServer;
    const serveHttp = (socket: Socket): void => {
      httpServer.emit('connection', socket);
      // A listener that read ahead (the PROXY protocol header) paused the socket and put back what followed the
      // header; node:http waits for bytes without resuming a socket someone paused.
      if (socket.isPaused()) socket.resume();
    };
    const handOver = (socket: Socket): void => {
      const client = this.#admission.clientOf(socket);
      // Redirected traffic (a transparent listener) may be HTTP, TLS or anything: its first bytes decide.
      if (client?.destination !== undefined) void serveRedirected(runtime, socket, client, serveHttp);
      else serveHttp(socket);
    };
    const accept: AcceptConnection = (socket, context) => this.#admission.admit(socket, context, handOver);
    const onRefused = (reason: string, peer: string): void => this.#logger.info({ remoteAddress: peer }, `connection refused: ${reason}`);
    const listeners: Listener[] = [];
    if (this.#options.explicit) {
      const explicit = new TcpListener('explicit', this.#options.host, this.#options.port);
      this.#explicit = explicit;
      const front = this.#options.acceptProxyProtocol;
      listeners.push(front === undefined ? explicit : new ProxyProtocolListener(explicit, { ...front, onRefused }));
    }
    const transparent = this.#options.transparent;
    if (transparent !== undefined) {
      listeners.push(new TransparentListener({ ...transparent, onRefused, onError: (err) => this.#logger.error({ err }, 'transparent listener error') }));
    }
    this.#listeners = [...listeners, ...this.#options.listeners];
    if (this.#listeners.length === 0) throw new Error('nothing to listen on: the explicit listener is off and no other listener was given');
    const bound: Array<AddressInfo & { listener: string }> = [];
    try {
      for (const listener of this.#listeners) bound.push({ ...(await listener.listen(accept)), listener: listener.name });
    } catch (err) {
      // One listener that cannot bind stops the start; the ones already bound must not stay open.
      await Promise.all(this.#listeners.map((listener) => listener.close()));
      throw err;
    }
    this.#explicit?.onError((err) => this.#logger.error({ err }, 'listener error'));
    this.#bound = bound;
    const address = this.address()!;
    const interfaceAddresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((entry) => entry.address));
    this.#self = bound.map((entry) => describeSelfAddresses(entry.address, entry.port, interfaceAddresses));
    const context: AddonContext = { logger: this.#logger, options: this.#options };
    const pending = this.#hooks.run('running', context);
    if (pending !== undefined) await pending;
    return address;
  }

  #createRuntime(): ProxyRuntime {
    const server = this;
    return {
      options: this.#options,
      pseudonym: this.#pseudonym,
      logger: this.#logger,
      hooks: this.#hooks,
      guardFor: (flow) => {
        if (!this.#hooks.has('dialing')) return this.#guard;
        const hooks = this.#hooks;
        const self = this.#guard;
        return (ip, port) => {
          const host = flow.kind === 'http' ? flow.request.host : flow.target.host;
          return self(ip, port) ?? hooks.checkDestination(flow, { host, ip, port });
        };
      },
      dialer: this.#dialer,
      resolver: this.#resolver,
      upstreamProxyHeader: this.#upstreamProxyHeader,
      routes: this.#routes,
      routeAgents: this.#routeAgents,
      mitm: this.#mitm,
      destinationNames: this.#destinationNames,
      originTls: this.#originTls,
      serveIntercepted: (tls, raw, interception) => {
        this.#admission.alias(tls, raw);
        this.#interceptions.set(tls, interception);
        this.#httpServer?.emit('connection', tls);
      },
      interceptionOf: (socket) => this.#interceptions.get(socket),
      httpAgent: this.#httpAgent,
      originPool: this.#originPool,
      httpsAgent: this.#httpsAgent,
      shutdownSignal: this.#shutdown.signal,
      isClosing: () => this.#closing !== undefined,
      clientInfo(socket: Socket): ClientInfo {
        return server.#admission.clientOf(socket) ?? server.#unknownClient(socket);
      },
      flowStarted: (flow) => {
        flow[activeEntry] = this.#flows.add(flow);
        publishFlow('flowStart', flow);
        if (flow.kind === 'tunnel' || flow.isUpgrade) this.#tunnels++;
      },
      flowEnded: (flow) => {
        const entry = flow[activeEntry];
        if (entry === undefined || !entry.remove()) return;
        flow[activeEntry] = undefined;
        publishFlow('flowEnd', flow);
        if (flow.kind === 'tunnel' || flow.isUpgrade) this.#tunnels--;
        this.#stats.flowsCompleted++;
        if (flow.error !== undefined) this.#stats.flowErrors[flow.error.type] = (this.#stats.flowErrors[flow.error.type] ?? 0) + 1;
        if (this.#httpFlowsDrained !== undefined && !this.#hasHttpFlows()) this.#httpFlowsDrained();
      },
      spliceStarted: (handle) => {
        if (handle.inKernel) this.#stats.tunnelsInKernel++;
        const entry = this.#splices.watch(handle);
        return () => void entry.remove();
      },
      tunnelCount: () => this.#tunnels,
      bodyMovedByKernel: () => void this.#stats.bodiesInKernel++,
      requestBodyMovedByKernel: () => void this.#stats.requestBodiesInKernel++,
      answeredBeforeBodyEnd: new WeakSet(),
      requestRejected: (socket, error) => {
        this.#stats.requestsRejected++;
        const client = this.#admission.clientOf(socket);
        this.#logger.info(
          { client: client && `${client.remoteAddress}:${client.remotePort}`, status: error.status, error: error.type, errorDetails: error.message },
          `rejected request: ${error.message}`,
        );
      },
      trackUpstreamSocket: (socket) => {
        const place: ConnectionPlace = { connection: socket };
        const entry = this.#upstreamSockets.add(place);
        socket.on('close', () => entry.remove());
        return place;
      },
      clientPlace: (socket) => this.#admission.placeOf(socket),
    };
  }

  #unknownClient(socket: Socket): ClientInfo {
    return {
      id: 0,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      connectedAt: Date.now(),
      listener: 'unknown',
      destination: undefined,
    };
  }

  #hasHttpFlows(): boolean {
    return this.#flows.some((flow) => flow.kind === 'http' && !flow.isUpgrade);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const httpServer = this.#httpServer;
    if (httpServer === undefined) return;
    const stopped = Promise.all(this.#listeners.map((listener) => listener.close()));
    // A connection accepted just before the listener closed has not sent its request yet, and closing it as idle
    // would fail a client that did nothing wrong (seen in rolling restarts). Give such connections a moment.
    await this.#letFreshConnectionsSpeak();
    httpServer.closeIdleConnections();

    if (this.#hasHttpFlows()) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#httpFlowsDrained = resolve;
        timer = setTimeout(resolve, this.#options.shutdownGraceMs);
      });
      clearTimeout(timer);
      this.#httpFlowsDrained = undefined;
    }

    this.#shutdown.abort();
    const reason = new ProxyError('connection_terminated', 'proxy shut down');
    for (const handle of this.#splices.streams()) handle.abort(reason);
    httpServer.close();
    for (const client of this.#admission.clients.values()) client.connection.destroy();
    for (const upstream of this.#upstreamSockets.values()) upstream.connection.destroy();
    this.#httpAgent.destroy();
    this.#originPool.destroy();
    this.#httpsAgent.destroy();
    this.#routeAgents.destroy();
    await stopped;
    await this.#waitForFlows();
    try {
      const pending = this.#hooks.run('done');
      if (pending !== undefined) await pending;
    } catch (err) {
      this.#logger.error({ err }, 'addon failed in done');
    }
  }

  /** Waits until no client connection is younger than FRESH_CONNECTION_MS, within the shutdown grace. */
  async #letFreshConnectionsSpeak(): Promise<void> {
    const deadline = Date.now() + Math.min(this.#options.shutdownGraceMs, FRESH_CONNECTION_MS * 4);
    for (;;) {
      let youngest = 0;
      for (const client of this.#admission.clients.values()) youngest = Math.max(youngest, client.info.connectedAt);
      const wait = youngest + FRESH_CONNECTION_MS - Date.now();
      if (wait <= 0 || Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, deadline - Date.now())));
    }
  }

  /** Flows end asynchronously after their sockets close (their hooks run); give them a bounded moment. */
  async #waitForFlows(): Promise<void> {
    for (let i = 0; i < 100 && this.#flows.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
