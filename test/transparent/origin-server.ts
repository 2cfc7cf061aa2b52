/**
 * The origin of the transparent-mode tests, run inside the origin network namespace (not a test file itself):
 *   :80   HTTP, answers JSON saying what it received (Host, path, the peer it saw);
 *   :443  HTTPS with the certificate given on the command line, the same JSON;
 *   :25   a server-first protocol: a banner, then an echo of every line, closing when the client does.
 * Listens on :: (IPv4 and IPv6). Prints one JSON line once all three listen.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer } from 'node:net';
import { readFileSync } from 'node:fs';

const [certPath, keyPath] = process.argv.slice(2);
if (certPath === undefined || keyPath === undefined) throw new Error('usage: origin-server.js CERT KEY');

function answer(scheme: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.stringify({
        scheme,
        method: req.method,
        url: req.url,
        host: req.headers.host,
        via: req.headers.via,
        peer: req.socket.remoteAddress,
        local: req.socket.localAddress,
        bodyBytes: Buffer.concat(chunks).length,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  };
}

const http = createHttpServer(answer('http'));
const https = createHttpsServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) }, answer('https'));
const banner = createTcpServer({ allowHalfOpen: true }, (socket) => {
  socket.write(`220 origin ready for ${socket.remoteAddress}\r\n`);
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('end', () => socket.end('221 bye\r\n'));
  socket.on('error', () => socket.destroy());
});

let listening = 0;
const ready = (): void => {
  if (++listening === 3) process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
};
http.listen(80, '::', ready);
https.listen(443, '::', ready);
banner.listen(25, '::', ready);
process.on('SIGTERM', () => process.exit(0));
