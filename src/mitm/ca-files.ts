/**
 * Where the interception CA lives and the error its commands report. Kept apart from certificate-authority.ts so
 * that naming the CA directory (every CLI start does) does not load the X.509 library, which only interception
 * and `getaway ca` need.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export const CA_CERT_FILE = 'getaway-ca.pem';
export const CA_KEY_FILE = 'getaway-ca-key.pem';

/** $GETAWAY_CA_DIR, else $XDG_CONFIG_HOME/getaway, else ~/.config/getaway. Per user, like mitmproxy's ~/.mitmproxy. */
export function defaultCaDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['GETAWAY_CA_DIR']) return env['GETAWAY_CA_DIR'];
  return join(env['XDG_CONFIG_HOME'] || join(homedir(), '.config'), 'getaway');
}

export class CaError extends Error {
  override readonly name = 'CaError';
}
