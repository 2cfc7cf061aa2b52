/**
 * Reads a paused client socket until its first bytes decide what it speaks: `classify` says "incomplete" until it
 * knows. The client closing its side, or staying silent for `timeoutMs` (a server-first protocol: SMTP, MySQL),
 * decides too, as `silent`. The socket is left paused, and every byte read is returned for the caller to pass on.
 */
import type { Socket } from 'node:net';

export function readFirstBytes<T>(
  socket: Socket,
  head: Buffer,
  timeoutMs: number,
  classify: (bytes: Buffer) => T | 'incomplete',
  silent: T,
): Promise<{ bytes: Buffer; result: T }> {
  let bytes = head;
  const first = bytes.length > 0 ? classify(bytes) : 'incomplete';
  if (first !== 'incomplete') return Promise.resolve({ bytes, result: first });
  return new Promise((resolve) => {
    const finish = (result: T): void => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.pause();
      resolve({ bytes, result });
    };
    const onData = (chunk: Buffer): void => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      const result = classify(bytes);
      if (result !== 'incomplete') finish(result);
    };
    const onEnd = (): void => finish(silent);
    const timer = setTimeout(onEnd, timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}
