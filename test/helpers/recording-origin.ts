import type { TestContext } from 'node:test';
import { startTcpServer } from './servers.js';

export interface RecordingOrigin {
  port: number;
  /** Every byte each connection delivered, in connection order. */
  received(): string[];
}

/**
 * A raw origin that records exactly the bytes that reach it (what smuggling tests must prove) and answers
 * every request head it sees with a fixed 200. `respond` can replace the answer (for response-side vectors).
 */
export async function startRecordingOrigin(t: TestContext, respond?: string): Promise<RecordingOrigin> {
  const connections: string[] = [];
  const { port } = await startTcpServer(t, (socket) => {
    const index = connections.push('') - 1;
    socket.on('data', (chunk: Buffer) => {
      const before = connections[index]!;
      connections[index] = before + chunk.toString('latin1');
      if (!before.includes('\r\n\r\n') && connections[index]!.includes('\r\n\r\n')) {
        socket.write(respond ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
    socket.on('end', () => socket.end());
  });
  return { port, received: () => connections.slice() };
}

/** A raw origin that counts connections and answers each with a 200 and a close: proof of whether anything was dialled. */
export async function startCountingOrigin(t: TestContext): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const { port } = await startTcpServer(t, (socket) => {
    connections++;
    socket.on('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
  });
  return { port, connections: () => connections };
}
