/**
 * The life of one service process (`npm run start:gateway`, `npm run start:subgraph -- <name>`): start it,
 * then on SIGTERM or SIGINT drain it (stop accepting, finish in-flight requests, close its pools) and exit 0.
 * Started by a launcher with an IPC channel (`npm start`), it also stops when that channel closes: the
 * launcher is gone, even killed with SIGKILL, and nobody would stop this process any more.
 */
import type { Logger } from 'pino';

export interface StoppableService {
  close(graceMs?: number): Promise<void>;
}

export interface ServiceLifecycleOptions {
  name: string;
  logger: Logger;
  /** How long in-flight requests may take to finish before their connections are cut. */
  graceMs: number;
  /** Runs once the service has closed, before the process exits (the tracer's last export); a failure is logged. */
  afterClose?: () => Promise<void>;
}

export async function runService(
  start: () => Promise<StoppableService>,
  { name, logger, graceMs, afterClose }: ServiceLifecycleOptions,
): Promise<void> {
  let service: StoppableService | undefined;
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    // Nothing to drain yet: a stop requested during start-up ends the process at once.
    if (!service) process.exit(0);
    logger.info({ reason, graceMs }, `${name} stopping: draining in-flight requests`);
    // close() cuts the last connections after graceMs; this only guards against a pool that never closes.
    setTimeout(() => {
      logger.error(`${name} did not stop within ${graceMs + 5000} ms`);
      process.exit(1);
    }, graceMs + 5000).unref();
    service.close(graceMs).then(
      async () => {
        await afterClose?.().catch((error: unknown) => logger.warn({ err: error }, `${name}: final telemetry export failed`));
        logger.info(`${name} stopped`);
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, `${name} did not stop cleanly`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (process.channel) process.once('disconnect', () => stop('launcher gone'));
  try {
    service = await start();
  } catch (error) {
    logger.debug({ err: error }, `${name} failed to start`);
    console.error(`${name} failed to start: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
