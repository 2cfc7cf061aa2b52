import type { IncomingMessage } from 'node:http';
import { parseHostField, parseRequestTarget } from '../http/request-target.js';
import type { ProxyRuntime } from '../runtime.js';
import { destinationName } from './redirected-connection.js';

/**
 * The host a redirected HTTP request goes by: the name it carries (absolute-form target, else Host) when that name
 * resolves to the original destination, else the destination's address. Either way it is sent to the destination.
 */
export function redirectedRequestHost(runtime: ProxyRuntime, req: IncomingMessage, destination: { host: string; port: number }): Promise<string> {
  const parsed = parseRequestTarget(req.url ?? '');
  let name: string | undefined;
  if (parsed.ok && parsed.target.form === 'absolute') name = parsed.target.host;
  else if (req.headers.host !== undefined) {
    const field = parseHostField(req.headers.host);
    if (field.ok) name = field.target.host;
  }
  return destinationName(runtime, name, destination, 'Host');
}
