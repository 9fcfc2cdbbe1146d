/**
 * Where the gateway takes its supergraph from: a file (SUPERGRAPH_PATH) or a URL (SUPERGRAPH_URL), read at
 * start and then followed. A file is watched (its folder, so an atomic rename is seen) with a poll as the
 * fallback; a URL is polled. A new version goes to ApolloGateway's `update`, which builds and validates the
 * whole supergraph before it replaces anything and swaps schema, query planner and plan cache in one
 * synchronous step; a version it refuses leaves the current one serving, and is logged once with the reason.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { SupergraphManager } from '@apollo/gateway';
import type { Logger } from 'pino';

export interface SupergraphSource {
  /** The supergraph file; ignored when `url` is set. */
  path: string;
  url?: string;
  /** How often the source is checked (a watched file is also checked on every change of its folder). */
  pollMs: number;
}

/** A change seen by the watcher is read this long after the last event, so a write in progress is not read half done. */
const SETTLE_MS = 50;

const digest = (sdl: string) => createHash('sha256').update(sdl).digest('hex');

async function fetchSupergraph(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.text();
}

export function createSupergraphManager(source: SupergraphSource, logger: Logger): SupergraphManager {
  const where = source.url ?? source.path;
  const read = source.url ? () => fetchSupergraph(source.url!) : () => readFile(source.path, 'utf8');
  return {
    async initialize({ update }) {
      const initial = await read().catch((error: Error) => {
        throw new Error(`cannot read the supergraph from ${where}: ${error.message}`);
      });
      let served = digest(initial);
      // The last problem logged (an unreadable source, a refused version), so a poll does not repeat it.
      let reported: string | undefined;
      const report = (key: string, log: () => void) => {
        if (reported !== key) log();
        reported = key;
      };
      let checking: Promise<void> | undefined;
      let checkAgain = false;

      const checkOnce = async () => {
        let sdl: string;
        try {
          sdl = await read();
        } catch (error) {
          const reason = (error as Error).message;
          report(`unreadable ${reason}`, () =>
            logger.warn({ supergraph: where, reason }, 'supergraph unreadable; still serving the current one'),
          );
          return;
        }
        const id = digest(sdl);
        if (id === served) return;
        try {
          update(sdl);
          served = id;
          reported = undefined;
          logger.info({ supergraph: where, id: id.slice(0, 12) }, 'supergraph updated');
        } catch (error) {
          const reason = String((error as Error).message ?? error).slice(0, 1000);
          report(`refused ${id}`, () =>
            logger.error({ supergraph: where, id: id.slice(0, 12), reason }, 'supergraph refused; still serving the current one'),
          );
        }
      };
      // One check at a time; a change noticed during a check runs one more afterwards.
      const check = () => {
        if (checking) {
          checkAgain = true;
          return;
        }
        checking = (async () => {
          do {
            checkAgain = false;
            await checkOnce();
          } while (checkAgain);
        })().finally(() => (checking = undefined));
      };

      const poll = setInterval(check, source.pollMs);
      poll.unref();
      let watcher: FSWatcher | undefined;
      let settle: NodeJS.Timeout | undefined;
      if (!source.url) {
        try {
          watcher = watch(dirname(source.path), { persistent: false }, (_event, filename) => {
            if (filename !== null && filename !== basename(source.path)) return;
            clearTimeout(settle);
            settle = setTimeout(check, SETTLE_MS);
          });
          watcher.on('error', (error) => {
            logger.warn({ supergraph: where, reason: error.message }, 'supergraph watch failed; polling only');
            watcher?.close();
          });
        } catch (error) {
          logger.warn({ supergraph: where, reason: (error as Error).message }, 'cannot watch the supergraph; polling only');
        }
      }
      logger.info({ supergraph: where, pollMs: source.pollMs, watching: Boolean(watcher) }, 'supergraph loaded');
      return {
        supergraphSdl: initial,
        async cleanup() {
          clearInterval(poll);
          clearTimeout(settle);
          watcher?.close();
          await checking;
        },
      };
    },
  };
}
