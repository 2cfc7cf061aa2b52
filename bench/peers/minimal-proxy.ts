/**
 * A minimal absolute-form forward proxy with a choice of origin client, for one question only: how much does
 * the client library cost? `node dist/bench/peers/minimal-proxy.js http|undici PORT`. No hop-by-hop handling,
 * no errors worth the name: not a peer, a measuring stick.
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool } from 'undici';

const mode = process.argv[2] === 'undici' ? 'undici' : 'http';
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
    pool = new Pool(url.origin, { connections: 256 });
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
server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  console.log(typeof address === 'object' && address !== null ? address.port : address);
});
