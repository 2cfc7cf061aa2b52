/**
 * Mints and caches interception certificates. One leaf key pair per process and kind (ECDSA P-256, and RSA
 * 2048 made on first need), so minting is one signature, never a key generation on the request path. A bounded
 * LRU with expiry holds the TLS contexts; concurrent requests for the same names share one mint.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import type { CertificateAuthority } from './certificate-authority.js';
import { leafCacheKey, type LeafNames } from './certificate-names.js';
import { createLeafCertificate, exportPrivateKeyPem, generateKeyPair, toPem, type KeyKind } from './x509.js';

export interface LeafOptions {
  /** How many minted contexts are kept. Default 1000. */
  maxEntries: number;
  /** Leaf validity from now; short, since they are re-minted for free. Default 7 days. */
  validityMs: number;
  /** Backdating, for clients whose clock is behind (mitmproxy issue #815 did 2 days). */
  backdateMs: number;
}

export const DEFAULT_LEAF_OPTIONS: LeafOptions = { maxEntries: 1000, validityMs: 7 * 86_400_000, backdateMs: 2 * 86_400_000 };

export interface MintedLeaf {
  readonly context: SecureContext;
  readonly certPem: string;
  readonly keyKind: KeyKind;
  /** Epoch ms after which the cache mints a fresh one (a day before it expires). */
  readonly renewAfter: number;
}

interface LeafKey {
  publicKey: CryptoKey;
  privateKeyPem: string;
}

export class LeafCertificates {
  readonly #ca: CertificateAuthority;
  readonly #options: LeafOptions;
  readonly #cache = new Map<string, MintedLeaf>();
  readonly #minting = new Map<string, Promise<MintedLeaf>>();
  readonly #keys = new Map<KeyKind, Promise<LeafKey>>();
  #minted = 0;

  constructor(ca: CertificateAuthority, options: Partial<LeafOptions> = {}) {
    this.#ca = ca;
    this.#options = { ...DEFAULT_LEAF_OPTIONS, ...options };
  }

  /** How many leaves were minted (not served from cache) since start. */
  get mintedCount(): number {
    return this.#minted;
  }

  get size(): number {
    return this.#cache.size;
  }

  get(names: LeafNames, keyKind: KeyKind, now = Date.now()): Promise<MintedLeaf> {
    const key = leafCacheKey(names, keyKind);
    const cached = this.#cache.get(key);
    if (cached !== undefined && cached.renewAfter > now) {
      // Map order is insertion order: re-inserting marks it most recently used.
      this.#cache.delete(key);
      this.#cache.set(key, cached);
      return Promise.resolve(cached);
    }
    let pending = this.#minting.get(key);
    if (pending === undefined) {
      pending = this.#mint(names, keyKind, now).then(
        (leaf) => {
          this.#minting.delete(key);
          this.#cache.delete(key);
          this.#cache.set(key, leaf);
          while (this.#cache.size > this.#options.maxEntries) this.#cache.delete(this.#cache.keys().next().value!);
          return leaf;
        },
        (err: unknown) => {
          this.#minting.delete(key);
          throw err;
        },
      );
      this.#minting.set(key, pending);
    }
    return pending;
  }

  #leafKey(kind: KeyKind): Promise<LeafKey> {
    let key = this.#keys.get(kind);
    if (key === undefined) {
      key = generateKeyPair(kind).then(async (pair) => ({ publicKey: pair.publicKey, privateKeyPem: await exportPrivateKeyPem(pair.privateKey) }));
      this.#keys.set(kind, key);
    }
    return key;
  }

  async #mint(names: LeafNames, keyKind: KeyKind, now: number): Promise<MintedLeaf> {
    const key = await this.#leafKey(keyKind);
    const notAfter = now + this.#options.validityMs;
    const der = await createLeafCertificate({
      ...names,
      publicKey: key.publicKey,
      keyKind,
      issuerDer: this.#ca.certDer,
      issuerKey: this.#ca.privateKey,
      notBefore: new Date(now - this.#options.backdateMs),
      notAfter: new Date(notAfter),
    });
    this.#minted++;
    const certPem = toPem('CERTIFICATE', der);
    const context = createSecureContext({ key: key.privateKeyPem, cert: certPem, minVersion: 'TLSv1.2' });
    return { context, certPem, keyKind, renewAfter: Math.max(now + 1000, notAfter - 86_400_000) };
  }
}
