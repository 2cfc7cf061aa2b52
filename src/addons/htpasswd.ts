/**
 * htpasswd files (Apache's format, `htpasswd -B`, `-s`, `-m`): one `user:hash` per line. bcrypt is verified with
 * bcryptjs and Apache MD5 with apache-md5 (the two libraries Apache-compatible Node tools use); SHA-1 (`{SHA}`)
 * needs only node:crypto. Parsing the file is four lines of splitting, which is why it is here and not a library.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import md5 from 'apache-md5';
import bcrypt from 'bcryptjs';

export interface PasswordEntry {
  readonly user: string;
  /** Resolves true when `password` is this user's. Comparisons of equal-length digests are constant-time. */
  verify(password: string): Promise<boolean>;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** A password given in clear (`--auth user:pass`): compared as SHA-256 digests, so lengths do not leak either. */
export function plainEntry(user: string, password: string): PasswordEntry {
  const expected = sha256(password);
  return { user, verify: async (candidate) => sameBytes(sha256(candidate), expected) };
}

/** One htpasswd hash; throws on a scheme this file format has but we refuse (crypt(3) DES: 8 characters, broken). */
export function hashedEntry(user: string, hash: string): PasswordEntry {
  if (/^\$2[aby]\$\d{2}\$/.test(hash)) {
    // htpasswd writes $2y$, which is $2b$ under another name; bcryptjs knows $2a$ and $2b$.
    const normalized = hash.replace(/^\$2y\$/, '$2b$');
    return { user, verify: (candidate) => bcrypt.compare(candidate, normalized) };
  }
  if (hash.startsWith('{SHA}')) {
    const expected = Buffer.from(hash.slice(5), 'base64');
    return { user, verify: async (candidate) => sameBytes(createHash('sha1').update(candidate).digest(), expected) };
  }
  if (hash.startsWith('$apr1$')) {
    const expected = Buffer.from(hash);
    return { user, verify: async (candidate) => sameBytes(Buffer.from(md5(candidate, hash)), expected) };
  }
  throw new Error(`user "${user}": unsupported hash (use bcrypt, htpasswd -B; or SHA-1, -s; or MD5, -m)`);
}

/** Parses an htpasswd file's text. Blank lines and `#` comments are skipped; problems name the line. */
export function parseHtpasswd(text: string, source: string): Map<string, PasswordEntry> {
  const entries = new Map<string, PasswordEntry>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      problems.push(`${source}:${index + 1}: expected user:hash`);
      return;
    }
    const user = line.slice(0, colon);
    try {
      entries.set(user, hashedEntry(user, line.slice(colon + 1)));
    } catch (err) {
      problems.push(`${source}:${index + 1}: ${(err as Error).message}`);
    }
  });
  if (problems.length > 0) throw new Error(problems.join('; '));
  return entries;
}
