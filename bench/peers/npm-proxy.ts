// The npm `proxy` package as a benchmark peer: `node dist/bench/peers/npm-proxy.js PORT`.
import { createServer } from 'node:http';
import { createProxy } from 'proxy';

const server = createProxy(createServer());
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  console.log(typeof address === 'object' && address !== null ? address.port : address);
});
