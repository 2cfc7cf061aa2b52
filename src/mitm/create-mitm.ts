import type { MitmOptions } from '../config/options.js';
import type { MitmRuntime } from './mitm-runtime.js';
import { defaultCaDir, loadCertificateAuthority, parseCertificateAuthority } from './certificate-authority.js';
import { LeafCertificates } from './leaf-certificates.js';
import type { MitmPolicy } from './mitm-policy.js';

export const DEFAULT_PEEK_TIMEOUT_MS = 1000;

/**
 * Loads the CA (a directory, or PEM given inline) and builds what interception needs around the policy the
 * interception-policy addon decides with. Rejects with a CaError.
 */
export async function createMitm(options: MitmOptions, policy: MitmPolicy): Promise<MitmRuntime> {
  const ca = options.ca !== undefined ? await parseCertificateAuthority(options.ca.certPem, options.ca.keyPem) : await loadCertificateAuthority(options.caDir ?? defaultCaDir());
  return {
    ca,
    leaves: new LeafCertificates(ca),
    policy,
    peekTimeoutMs: options.peekTimeoutMs ?? DEFAULT_PEEK_TIMEOUT_MS,
    originNames: options.upstreamCert === true ? new Map() : undefined,
  };
}
