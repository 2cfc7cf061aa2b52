import assert from 'node:assert/strict';
import type { Proxy } from '../../src/index.js';

/**
 * The two ways a tunnel's bytes are copied: by the kernel (tunnel/kernel-splice.ts, the default where the native
 * module is built) and in JavaScript (tunnel/splice.ts). Behaviour both must have is tested once with each.
 */
export const TUNNEL_COPIES = [
  { name: 'kernel copy', options: { kernelSplice: true }, inKernel: true },
  { name: 'JavaScript copy', options: { kernelSplice: false }, inKernel: false },
] as const;

export type TunnelCopy = (typeof TUNNEL_COPIES)[number];

/** Fails unless the proxy's tunnels so far went the way `copy` says. */
export function assertCopiedBy(proxy: Proxy, copy: TunnelCopy): void {
  assert.equal(proxy.stats().tunnelsInKernel > 0, copy.inKernel, `tunnels copied ${copy.inKernel ? 'by the kernel' : 'in JavaScript'}`);
}
