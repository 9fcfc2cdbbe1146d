/** `npm start`: the whole platform, with a ready-to-paste curl per demo district. Ctrl-C stops everything. */
import '../config/node-version.ts';
import { DEMO_DISTRICTS } from './seed.ts';
import { rootLogger } from '../config/logger.ts';
import { issueDevToken } from './keys.ts';
import { startPlatform } from './platform.ts';

const platform = await startPlatform().catch((error: Error) => {
  rootLogger.debug({ err: error }, 'start failed');
  console.error(`npm start failed: ${error.message}`);
  process.exit(1);
});
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  rootLogger.info({ signal }, 'stopping');
  // Never hang on the way out (e.g. when PostgreSQL was already killed from outside).
  setTimeout(() => process.exit(1), 15_000).unref();
  await platform.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

const usesDevIssuer = !platform.config.jwt.jwksUrl && !platform.config.jwt.jwksFile;
const query = JSON.stringify({ query: '{ district { name slug schools { name } } students(first: 3) { edges { node { firstName lastName grade } } } }' });
const lines = ['', `Gateway: ${platform.gateway.url}`, ''];
if (usesDevIssuer) {
  for (const demo of DEMO_DISTRICTS) {
    const token = await issueDevToken(platform.keys, { tenantId: demo.tenantId, tenantClaim: platform.config.jwt.tenantClaim, expiresIn: '12h' });
    lines.push(`# ${demo.slug}`, `curl -s ${platform.gateway.url} -H 'content-type: application/json' -H 'authorization: Bearer ${token}' -d '${query}'`, '');
  }
  lines.push('More tokens: npm run --silent token -- --tenant <uuid|demo-slug>', '');
}
lines.push('Ctrl-C stops the platform.');
console.log(lines.join('\n'));
