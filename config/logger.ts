import { pino, type Logger } from 'pino';
import { readConfig } from './config.ts';

export const rootLogger: Logger = pino({
  level: readConfig().logLevel,
  base: undefined,
  redact: { paths: ['*.authorization', '*.password', '*.token', 'req.headers.authorization'], censor: '[redacted]' },
});
