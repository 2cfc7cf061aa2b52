import type { LevelWithSilent } from 'pino';
import { flowLog } from '../addons/flow-log.js';
import { loadConfigFile, type ServeSettings } from '../config/config-file.js';
import { DEFAULT_OPTIONS } from '../config/options.js';
import { createProxy } from '../core/proxy.js';
import { createLogger } from '../log/create-logger.js';

export interface ServeCommandOptions extends ServeSettings {
  config?: string;
}

/**
 * `getaway serve`: settings from the config file, overridden by flags; runs until SIGINT/SIGTERM, then shuts down
 * gracefully and exits 0. A second signal exits at once.
 */
export async function serve(flags: ServeCommandOptions): Promise<void> {
  const fromFile = flags.config === undefined ? {} : await loadConfigFile(flags.config);
  const { config: _config, ...fromFlags } = flags;
  const settings: ServeSettings = { ...fromFile, ...definedOnly(fromFlags) };
  const level: LevelWithSilent = settings.logLevel ?? 'info';
  const { logger, flush } = createLogger({ level, pretty: process.stdout.isTTY === true });
  const { logLevel: _level, ...proxySettings } = settings;

  const proxy = createProxy({ ...proxySettings, logger, addons: [flowLog()] });
  const address = await proxy.listen();
  logger.info({ url: proxy.url, address: address.address, port: address.port }, `getaway listening on ${proxy.url}`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      flush();
      process.exit(1);
    }
    stopping = true;
    const graceMs = settings.shutdownGraceMs ?? DEFAULT_OPTIONS.shutdownGraceMs;
    logger.info({ signal, graceMs }, 'shutting down: finishing in-flight requests');
    proxy.close().then(
      () => {
        logger.info('stopped');
        flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
