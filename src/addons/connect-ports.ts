import type { Addon } from '../core/addon.js';
import { ProxyError } from '../core/errors.js';

/** Which ports CONNECT may reach: a list of ports and ranges, or every port. */
export interface PortList {
  readonly source: string;
  /** True for "*". */
  readonly all: boolean;
  has(port: number): boolean;
}

/**
 * "443", "443,8443", "443,1000-2000", or "*" for every port; an array of numbers and such strings is read the same.
 * Throws an Error that quotes the part that is not a port or a range.
 */
export function parsePortList(spec: string | readonly (number | string)[]): PortList {
  const parts = (typeof spec === 'string' ? spec.split(',') : spec.flatMap((part) => String(part).split(','))).map((part) => part.trim());
  const source = parts.join(',');
  if (parts.includes('*')) return { source, all: true, has: () => true };
  const ranges: Array<[number, number]> = [];
  for (const part of parts) {
    const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    const low = match === null ? NaN : Number(match[1]);
    const high = match?.[2] === undefined ? low : Number(match[2]);
    if (!(low >= 1 && high <= 65535 && low <= high)) throw new Error(`"${part}" is not a port (1-65535), a range like 8000-8999, or *`);
    ranges.push([low, high]);
  }
  if (ranges.length === 0) throw new Error('no ports given');
  return { source, all: false, has: (port) => ranges.some(([low, high]) => port >= low && port <= high) };
}

/**
 * Refuses CONNECT to ports outside `ports` with 403 `http_request_denied`, as squid's SSL_ports and tinyproxy's
 * ConnectPort do: a tunnel to port 25 or 22 is how an open proxy becomes a spam relay or a way into a network.
 * Plain requests are not limited: they are HTTP by construction.
 */
export function connectPorts(ports: PortList): Addon {
  return {
    name: 'connect-ports',
    connect(flow) {
      if (!ports.has(flow.target.port)) {
        throw new ProxyError('http_request_denied', `CONNECT to port ${flow.target.port} is not allowed (connectPorts: ${ports.source})`);
      }
    },
  };
}
