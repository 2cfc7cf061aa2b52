/**
 * Upstream proxies written for the tests: a counting HTTP forward proxy with failure modes, a minimal SOCKS5
 * server, and a real tinyproxy (Debian) started on a free port.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { TestCertificates } from './test-ca.js';

export type UpstreamMode = 'ok' | 'connect-403' | 'close' | 'hang' | 'status-429' | 'status-407';

export interface CountingProxy {
  port: number;
  url: string;
  mode: UpstreamMode;
  /** Absolute-form requests forwarded, by target URL. */
  requests: string[];
  /** CONNECT targets. */
  connects: string[];
  /** Proxy-Authorization values received. */
  authorizations: Array<string | undefined>;
}

export interface CountingProxyOptions {
  mode?: UpstreamMode;
  /** When set, anything without this Proxy-Authorization gets 407. */
  requireAuthorization?: string;
  tls?: TestCertificates;
  retryAfterSeconds?: number;
}

export async function startCountingProxy(t: TestContext, options: CountingProxyOptions = {}): Promise<CountingProxy> {
  const proxy: CountingProxy = { port: 0, url: '', mode: options.mode ?? 'ok', requests: [], connects: [], authorizations: [] };
  const sockets = new Set<Socket>();

  const refuse = (status: number, reply: (head: string) => void): void => {
    const extra = status === 429 ? `Retry-After: ${options.retryAfterSeconds ?? 1}\r\n` : status === 407 ? 'Proxy-Authenticate: Basic realm="test"\r\n' : '';
    reply(`HTTP/1.1 ${status} Refused\r\n${extra}Content-Length: 0\r\n\r\n`);
  };
  const verdict = (auth: string | undefined): number | 'hang' | 'close' | undefined => {
    if (proxy.mode === 'hang' || proxy.mode === 'close') return proxy.mode;
    if (proxy.mode === 'status-429') return 429;
    if (proxy.mode === 'status-407') return 407;
    if (options.requireAuthorization !== undefined && auth !== options.requireAuthorization) return 407;
    return undefined;
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const auth = req.headers['proxy-authorization'];
    proxy.authorizations.push(auth);
    const decision = verdict(auth);
    if (decision === 'hang') return;
    if (decision === 'close') return void req.socket.destroy();
    if (decision !== undefined) return refuse(decision, (head) => req.socket.end(head));
    proxy.requests.push(req.url ?? '');
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const out = request({ host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: req.method, headers }, (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.pipe(res);
    });
    // What squid and tinyproxy do when the origin cannot be reached: answer 502 themselves.
    out.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    req.pipe(out);
  };
  const server: Server = options.tls ? createHttpsServer({ key: options.tls.leafKey, cert: options.tls.leafCert }, handler) : createServer(handler);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const auth = req.headers['proxy-authorization'];
    proxy.authorizations.push(auth);
    const decision = proxy.mode === 'connect-403' ? 403 : verdict(auth);
    if (decision === 'hang') return;
    if (decision === 'close') return void socket.destroy();
    if (decision !== undefined) return refuse(decision, (h) => socket.end(h));
    proxy.connects.push(req.url ?? '');
    const [host, port] = [req.url!.slice(0, req.url!.lastIndexOf(':')).replace(/^\[|\]$/g, ''), Number(req.url!.slice(req.url!.lastIndexOf(':') + 1))];
    const out = connect({ host, port }, () => {
      socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (head.length > 0) out.write(head);
      out.pipe(socket);
      socket.pipe(out);
    });
    let established = false;
    out.once('connect', () => (established = true));
    out.on('error', () => (established ? socket.destroy() : socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n')));
    socket.on('close', () => out.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `${options.tls ? 'https://localhost' : 'http://127.0.0.1'}:${proxy.port}`;
  return proxy;
}

export interface SocksServer {
  port: number;
  /** Each CONNECT's destination as sent: an address (socks5) or a name (socks5h). */
  destinations: Array<{ host: string; type: 'ipv4' | 'domain' | 'ipv6' }>;
  users: string[];
}

/** SOCKS5 (RFC 1928) CONNECT with optional username/password (RFC 1929), just enough for the tests. */
export async function startSocksServer(t: TestContext, credentials?: { username: string; password: string }): Promise<SocksServer> {
  const result: SocksServer = { port: 0, destinations: [], users: [] };
  const server = createNetServer((socket) => {
    socket.on('error', () => socket.destroy());
    let buffer = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' | 'done' = 'greeting';
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      if (stage === 'greeting' && buffer.length >= 2 && buffer.length >= 2 + buffer[1]!) {
        const methods = [...buffer.subarray(2, 2 + buffer[1]!)];
        buffer = buffer.subarray(2 + buffer[1]!);
        const wanted = credentials ? 0x02 : 0x00;
        if (!methods.includes(wanted)) return void socket.end(Buffer.from([5, 0xff]));
        socket.write(Buffer.from([5, wanted]));
        stage = credentials ? 'auth' : 'request';
      }
      if (stage === 'auth' && buffer.length >= 2) {
        const ulen = buffer[1]!;
        if (buffer.length < 3 + ulen) return;
        const plen = buffer[2 + ulen]!;
        if (buffer.length < 3 + ulen + plen) return;
        const username = buffer.subarray(2, 2 + ulen).toString();
        const password = buffer.subarray(3 + ulen, 3 + ulen + plen).toString();
        buffer = buffer.subarray(3 + ulen + plen);
        result.users.push(username);
        const ok = username === credentials!.username && password === credentials!.password;
        socket.write(Buffer.from([1, ok ? 0 : 1]));
        if (!ok) return void socket.end();
        stage = 'request';
      }
      if (stage === 'request' && buffer.length >= 5) {
        const type = buffer[3]!;
        let host: string;
        let offset: number;
        if (type === 1) {
          if (buffer.length < 10) return;
          host = [...buffer.subarray(4, 8)].join('.');
          offset = 8;
        } else if (type === 3) {
          const len = buffer[4]!;
          if (buffer.length < 7 + len) return;
          host = buffer.subarray(5, 5 + len).toString();
          offset = 5 + len;
        } else {
          if (buffer.length < 22) return;
          host = (buffer.subarray(4, 20).toString('hex').match(/.{4}/g) ?? []).join(':');
          offset = 20;
        }
        const port = buffer.readUInt16BE(offset);
        const rest = buffer.subarray(offset + 2);
        stage = 'done';
        socket.removeListener('data', onData);
        result.destinations.push({ host, type: type === 1 ? 'ipv4' : type === 3 ? 'domain' : 'ipv6' });
        const out = connect({ host, port }, () => {
          socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
          if (rest.length > 0) out.write(rest);
          out.pipe(socket);
          socket.pipe(out);
        });
        out.on('error', () => socket.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])));
        socket.on('close', () => out.destroy());
      }
    };
    socket.on('data', onData);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  result.port = (server.address() as AddressInfo).port;
  return result;
}

/** A port nothing listens on right now (for daemons that need one in their config). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Debian's tinyproxy in the foreground with a minimal config, on a port picked free just before. */
export async function startTinyproxy(t: TestContext): Promise<{ port: number; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-tinyproxy-'));
  const port = await freePort();
  const config = join(dir, 'tinyproxy.conf');
  writeFileSync(config, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 30', 'Allow 127.0.0.1', 'MaxClients 50', 'LogLevel Critical', 'DisableViaHeader Yes', ''].join('\n'));
  const child = spawn('tinyproxy', ['-d', '-c', config], { stdio: 'ignore' });
  t.after(() => void child.kill('SIGKILL'));
  const deadline = Date.now() + 5000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`tinyproxy exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('tinyproxy did not listen within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { port, url: `http://127.0.0.1:${port}` };
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
