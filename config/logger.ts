import { pino, type Logger } from 'pino';
import { readConfig } from './config.ts';

export const rootLogger: Logger = pino(
  {
    level: readConfig().logLevel,
    base: undefined,
    redact: { paths: ['*.authorization', '*.password', '*.token', 'req.headers.authorization'], censor: '[redacted]' },
  },
  // Synchronous writes: pino's asynchronous stdout flushes what it holds at exit and, on a broken pipe (a
  // service whose launcher died, see http/lifecycle.ts), retries that flush forever instead of exiting.
  // A synchronous write that meets a broken pipe makes pino stop logging, and the process exits normally.
  pino.destination({ fd: 1, sync: true }),
);
