/**
 * `getaway warc index FILE...`: a CDXJ index of WARC files (the format pywb and other replay tools read), made by
 * warcio's CDXIndexer, sorted as CDXJ must be (by SURT key, then timestamp, byte order). Record offsets are into
 * each file as given, and `filename` is its base name, as pywb expects when the index sits beside its archive.
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { basename } from 'node:path';
import { CDXIndexer } from 'warcio';
import { OptionsError } from '../config/options.js';

export async function warcIndex(files: string[], out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const missing: string[] = [];
  for (const file of files) await access(file).catch(() => missing.push(`${file}: cannot be read`));
  if (missing.length > 0) throw new OptionsError(missing);
  const indexer = new CDXIndexer({ format: 'cdxj' });
  const lines: string[] = [];
  for (const file of files) {
    for await (const entry of indexer.iterIndex([{ filename: basename(file), reader: createReadStream(file) }])) {
      lines.push(indexer.serializeCDXJ(entry));
    }
  }
  lines.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const line of lines) out.write(line);
}
