import type { CertificateAuthority } from './certificate-authority.js';
import type { LeafCertificates } from './leaf-certificates.js';
import type { MitmPolicy } from './mitm-policy.js';

/** What interception needs once a CA is loaded (create-mitm.ts builds it at listen()). */
export interface MitmRuntime {
  readonly ca: CertificateAuthority;
  readonly leaves: LeafCertificates;
  readonly policy: MitmPolicy;
  /** How long to wait for a client's first bytes before treating the tunnel as server-first (not TLS). */
  readonly peekTimeoutMs: number;
  /** Set when leaves copy the names of the origin's own certificate: host:port|sni → names, remembered. */
  readonly originNames: Map<string, string[]> | undefined;
}
