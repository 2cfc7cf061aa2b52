import type { LevelWithSilent } from 'pino';
import { flowLog } from '../addons/flow-log.js';
import { loadConfigFile, type ServeSettings } from '../config/config-file.js';
import { openProxyProblem } from '../config/access-options.js';
import { DEFAULT_OPTIONS, OptionsError } from '../config/options.js';
import { createProxy } from '../core/proxy.js';
import { createLogger } from '../log/create-logger.js';
import { runPrimary, type PrimaryMessage, type WorkerMessage } from './cluster-primary.js';
import cluster from 'node:cluster';
import type { Addon } from '../core/addon.js';
import type { WarcArchiver, WarcArchiverOptions } from '../addons/warc-archiver.js';

export interface ServeCommandOptions extends ServeSettings {
  config?: string;
  /** Processes sharing the listener (cluster); 1 runs in this process. */
  workers?: number;
}

/**
 * `getaway serve`: settings from the config file, overridden by flags; runs until SIGINT/SIGTERM, then shuts down
 * gracefully and exits 0. A second signal exits at once.
 */
export async function serve(flags: ServeCommandOptions): Promise<void> {
  const fromFile = flags.config === undefined ? {} : await loadConfigFile(flags.config);
  const { config: _config, workers = 1, ...fromFlags } = flags;
  const settings: ServeSettings = { ...fromFile, ...definedOnly(fromFlags) };
  const open = settings.explicit === false ? undefined : openProxyProblem(settings.host ?? DEFAULT_OPTIONS.host, settings);
  if (open !== undefined) throw new OptionsError([open]);
  const level: LevelWithSilent = settings.logLevel ?? 'info';
  const inCluster = workers > 1 || cluster.isWorker;
  const logger = createLogger({ level, pretty: process.stdout.isTTY === true, sharedOutput: inCluster });
  const { logLevel: _level, admin: adminAddress, warc, ...proxySettings } = settings;
  const admin = adminAddress === undefined ? undefined : { address: adminAddress, endpoint: await import('./admin-endpoint.js') };
  if (workers > 1 && cluster.isPrimary) {
    const group = await runPrimary(workers, settings.shutdownGraceMs ?? DEFAULT_OPTIONS.shutdownGraceMs, logger);
    if (admin !== undefined) await admin.endpoint.startAdminServer(admin.address, admin.endpoint.createClusterCollector(), group.ready, logger);
    return;
  }

  const servingMetrics = admin?.endpoint.createServingMetrics();
  const addons: Addon[] = [flowLog()];
  if (servingMetrics !== undefined) addons.push(servingMetrics.addon);
  const archive = warc === undefined ? undefined : await openArchive(warc);
  if (archive !== undefined) addons.push(archive);
  const proxy = createProxy({ ...proxySettings, logger, addons });
  servingMetrics?.observe(proxy, archive);
  const address = await proxy.listen();
  if (cluster.isWorker) {
    // The primary announces the shared address once; workers report in and obey its shutdown.
    process.send?.({ type: 'listening', url: proxy.url, port: address.port } satisfies WorkerMessage);
    let closing = false;
    const close = (): void => {
      if (closing) return;
      closing = true;
      void proxy.close().then(() => process.exit(0));
    };
    process.on('message', (message: PrimaryMessage) => message.type === 'shutdown' && close());
    // SIGHUP is the primary's: it replaces the workers one at a time, and the new ones read the files afresh.
    process.on('SIGHUP', () => undefined);
    process.on('SIGTERM', close);
    // A Ctrl-C reaches the whole process group; the primary coordinates, so workers wait for its message.
    process.on('SIGINT', () => undefined);
    return;
  }
  if (settings.explicit !== false) logger.info({ url: proxy.url, address: address.address, port: address.port }, `getaway listening on ${proxy.url}`);
  for (const bound of proxy.listening()) {
    if (bound.listener === 'explicit') continue;
    logger.info({ listener: bound.listener, address: bound.address, port: bound.port }, `getaway ${bound.listener} listener on ${bound.address}:${bound.port}`);
  }
  let stopping = false;
  if (admin !== undefined && servingMetrics !== undefined) await admin.endpoint.startAdminServer(admin.address, servingMetrics.collect, () => !stopping, logger);

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    const graceMs = settings.shutdownGraceMs ?? DEFAULT_OPTIONS.shutdownGraceMs;
    logger.info({ signal, graceMs }, 'shutting down: finishing in-flight requests');
    proxy.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => {
    proxy.reload().then(
      () => logger.info('reloaded: proxy users re-read'),
      (err: unknown) => logger.error({ err }, 'reload failed; the previous settings stay'),
    );
  });
}

/** The archiver, its directory made ready before the proxy listens: a directory that cannot be written stops the start (exit 2). */
async function openArchive(options: WarcArchiverOptions): Promise<WarcArchiver> {
  const { warcArchiver } = await import('../addons/warc-archiver.js');
  const archive = warcArchiver(options);
  try {
    await archive.open();
  } catch (err) {
    throw new OptionsError([`--warc: ${(err as Error).message}`]);
  }
  return archive;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
