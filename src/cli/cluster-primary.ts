/**
 * `--workers N`: one listener shared by N processes (node:cluster). The kernel spreads accepted connections
 * (SCHED_NONE: no hand-off through the primary, which would cost an IPC message per connection). The primary
 * only supervises: it re-forks a worker that dies, drains all of them on SIGINT/SIGTERM, and on SIGHUP replaces
 * them one at a time, each new worker listening before the old one drains, so no connection is refused.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

export type WorkerMessage = { type: 'listening'; url: string; port: number };
export type PrimaryMessage = { type: 'shutdown' };

function waitForListening(worker: Worker): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: WorkerMessage): void => {
      if (message?.type !== 'listening') return;
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      resolve(message);
    };
    const onExit = (code: number): void => reject(new Error(`worker ${worker.process.pid} exited with ${code} before listening`));
    worker.on('message', onMessage);
    worker.once('exit', onExit);
  });
}

function drain(worker: Worker, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (worker.isDead()) return resolve();
    const timer = setTimeout(() => worker.process.kill('SIGKILL'), timeoutMs);
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.send({ type: 'shutdown' } satisfies PrimaryMessage);
  });
}

/** Runs the workers; the result says whether the group still takes new traffic (false once a shutdown began). */
export async function runPrimary(count: number, graceMs: number, logger: Logger): Promise<{ ready(): boolean }> {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const live = new Set<Worker>();
  const retiring = new Set<Worker>();
  let stopping = false;
  const fork = async (): Promise<WorkerMessage> => {
    const worker = cluster.fork();
    live.add(worker);
    worker.once('exit', (code, signal) => {
      live.delete(worker);
      if (!stopping && !retiring.has(worker)) {
        logger.error({ pid: worker.process.pid, code, signal }, 'worker died; starting another');
        void fork().catch((err: unknown) => logger.error({ err }, 'could not replace a worker'));
      }
    });
    return waitForListening(worker);
  };

  const first = await Promise.all(Array.from({ length: count }, fork));
  const { url, port } = first[0]!;
  logger.info({ url, port, workers: count }, `getaway listening on ${url} with ${count} workers`);

  // Workers drain for the grace period; past it (and a margin for closing) they are killed.
  const drainTimeoutMs = graceMs + 5000;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      for (const worker of live) worker.process.kill('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs, workers: live.size }, 'shutting down: workers finish in-flight requests');
    void Promise.all([...live].map((worker) => drain(worker, drainTimeoutMs))).then(() => {
      logger.info('stopped');
      process.exit(0);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => {
    if (stopping) return;
    const old = [...live];
    logger.info({ workers: old.length }, 'SIGHUP: replacing workers one at a time');
    void (async () => {
      for (const worker of old) {
        if (stopping) return;
        await fork();
        retiring.add(worker);
        await drain(worker, drainTimeoutMs);
        retiring.delete(worker);
      }
      logger.info({ workers: live.size }, 'all workers replaced');
    })().catch((err: unknown) => logger.error({ err }, 'rolling restart failed'));
  });
  return { ready: () => !stopping };
}
