/**
 * What the IO handlers (HTTP forwarding, CONNECT, Upgrade, interception) are given: the core's seams, how to reach
 * origins, and interception when a CA is loaded. One value built by createProxy(), so handlers never reach for
 * module state and two proxies in one process stay apart. It lives above core because its parts belong to
 * upstream/ and mitm/.
 */
import type { CoreRuntime } from './core/runtime.js';
import type { MitmRuntime } from './mitm/mitm-runtime.js';
import type { DestinationNames } from './transparent/destination-names.js';
import type { OriginAccess } from './upstream/origin-access.js';

export interface ProxyRuntime extends CoreRuntime, OriginAccess {
  /** Set when interception is configured (a CA is loaded). */
  readonly mitm: MitmRuntime | undefined;
  /** Checks the names redirected clients send (Host, SNI) against their original destination. */
  readonly destinationNames: DestinationNames;
}
