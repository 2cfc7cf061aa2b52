import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Proxy } from '../../src/index.js';

/**
 * The two ways bytes nothing needs to see are copied: by the kernel (tunnel/kernel-splice.ts, the default where the
 * native module is built) and in JavaScript (tunnel/splice.ts, http/origin-exchange.ts). Behaviour both must have
 * is tested once with each.
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

/** `length` bytes that differ at every offset and per seed, so a reordered, repeated or swapped chunk shows in a digest. */
export function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length + 3);
  for (let i = 0; i < length; i += 4) bytes.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return bytes.subarray(0, length);
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
