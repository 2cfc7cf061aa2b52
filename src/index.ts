/** getaway: a forward HTTP/HTTPS proxy. The library surface; the CLI is a thin layer over it. */
export { createProxy, type Proxy } from './core/proxy.js';
export { DEFAULT_OPTIONS, OptionsError, resolveProxyOptions, type ProxyOptions, type ResolvedProxyOptions, type TransparentOptions } from './config/options.js';
export type { Addon, AddonContext } from './core/addon.js';
export type { Hooks, HookName } from './core/hooks.js';
export { HOOK_NAMES } from './core/hooks.js';
export {
  HttpFlow,
  TunnelFlow,
  type Flow,
  type FlowResponse,
  type OutboundRequest,
  type ClientRequestHead,
  type FlowTimestamps,
  type TunnelAction,
  type RouteChoice,
  ReceivedResponse,
  type UpstreamConnectionInfo,
} from './core/flow.js';
export type { ClientInfo } from './core/connection.js';
export type { AcceptConnection, Listener, ListenerContext } from './core/listener.js';
export type { BodyTap } from './core/body-tap.js';
export type { DestinationGuard, DialAddress } from './core/destination.js';
export { HeaderList } from './core/header-list.js';
export { ProxyError, type ProxyErrorType } from './core/errors.js';
export { flowLog, describeFlow, type FlowLogRecord } from './addons/flow-log.js';
export { createLogger } from './log/create-logger.js';
export { diagnosticChannels } from './core/diagnostics.js';
export { clientAllowList } from './addons/client-allow-list.js';
export { connectPorts, parsePortList, type PortList } from './addons/connect-ports.js';
export { destinationPolicy, METADATA_RANGES, PRIVATE_RANGES, type DestinationPolicyOptions } from './addons/destination-policy.js';
export { proxyAuth, type ProxyAuth, type ProxyAuthOptions } from './addons/proxy-auth.js';
export { type AccessOptions } from './config/access-options.js';
export { AddressRanges, canonicalIp } from './core/addresses.js';
export type { ProxyProtocolInfo } from './core/listener.js';
export { ProxyProtocolListener, type ProxyProtocolOptions } from './listeners/proxy-protocol-listener.js';
export { TcpListener } from './listeners/tcp-listener.js';
export { accessRules, type AccessRule } from './addons/access-rules.js';
export { rateLimits, type RateLimit, type RateLimitOptions } from './addons/rate-limits.js';
export { warcArchiver, type WarcArchiver, type WarcArchiverOptions, type WarcArchiverStats } from './addons/warc-archiver.js';
export { WarcWriter, type WarcWriterOptions, type WarcWriterStats } from './archive/warc-writer.js';
export { TransparentListener, type TransparentListenerOptions, type TransparentMode } from './listeners/transparent-listener.js';
export { TransparentUnavailableError } from './listeners/socket-options.js';
