/**
 * A minimal forward proxy with a choice of origin client: how much does the client library cost
 * (bench:clients), and how much does getaway cost over the least a Node proxy does (bench:pair with `minimal`).
 * `node dist/bench/peers/minimal-proxy.js http|undici PORT`. Absolute-form HTTP and CONNECT; no hop-by-hop
 * handling, no errors worth the name, no log: not a peer, a measuring stick.
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Pool } from 'undici';

const mode = process.argv[2] === 'undici' ? 'undici' : 'http';
// Loaded only in undici mode: imported at start, undici's modules made V8 run mark-compacts back to back while
// the http mode relayed 64 MiB bodies (node --trace-gc shows them), which made the node-floor peer look slower
// than it is on the bulk rows.
const { Pool: UndiciPool } = mode === 'undici' ? await import('undici') : { Pool: undefined };
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const pools = new Map<string, Pool>();
const DROPPED = new Set(['connection', 'keep-alive', 'host', 'proxy-connection']);

function forwardable(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!DROPPED.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

function viaHttp(req: IncomingMessage, res: ServerResponse, url: URL): void {
  // With headers given as an array node:http adds no Host of its own, so it is set here (as undici does).
  const headers = forwardable(req.rawHeaders);
  headers.push('Host', url.host);
  const out = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: req.method, headers, agent, setHost: false }, (up) => {
    res.writeHead(up.statusCode ?? 502, forwardable(up.rawHeaders));
    up.pipe(res);
  });
  out.on('error', () => res.destroy());
  req.pipe(out);
}

function viaUndici(req: IncomingMessage, res: ServerResponse, url: URL): void {
  let pool = pools.get(url.origin);
  if (pool === undefined) {
    pool = new UndiciPool!(url.origin, { connections: 256 });
    pools.set(url.origin, pool);
  }
  pool.stream(
    { path: url.pathname + url.search, method: (req.method ?? 'GET') as 'GET', headers: forwardable(req.rawHeaders), body: req.method === 'GET' || req.method === 'HEAD' ? null : req },
    ({ statusCode, headers }) => {
      const raw: string[] = [];
      for (const [name, value] of Object.entries(headers)) {
        if (DROPPED.has(name)) continue;
        for (const v of Array.isArray(value) ? value : [value]) raw.push(name, String(v));
      }
      res.writeHead(statusCode, raw);
      return res;
    },
    (err) => {
      if (err) res.destroy();
    },
  );
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/');
  if (mode === 'undici') viaUndici(req, res, url);
  else viaHttp(req, res, url);
});
// CONNECT: dial, 200, pipe both ways. Enough for the setup and bulk rows.
server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
  const colon = (req.url ?? '').lastIndexOf(':');
  const upstream = connect({ host: req.url!.slice(0, colon), port: Number(req.url!.slice(colon + 1)) }, () => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
});
server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  console.log(typeof address === 'object' && address !== null ? address.port : address);
});
