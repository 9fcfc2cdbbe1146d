/** `npm run --silent token -- --tenant <uuid|demo-slug>`: prints one token the running gateway accepts. */
import '../config/node-version.ts';
import { Command } from 'commander';
import { DEMO_DISTRICTS } from './seed.ts';
import { isUuid } from '../tenancy/tenant-context.ts';
import { readConfig } from '../config/config.ts';
import { issueDevToken, loadOrCreateKeys } from './keys.ts';

const program = new Command()
  .requiredOption('--tenant <uuid|slug>', `district id, or a demo slug (${DEMO_DISTRICTS.map((d) => d.slug).join(', ')})`)
  .option('--subject <sub>', 'the token subject', 'dev-user')
  .option('--expires-in <span>', 'lifetime, e.g. 15m, 1h', '1h')
  .action(async (options: { tenant: string; subject: string; expiresIn: string }) => {
    const tenantId = DEMO_DISTRICTS.find((d) => d.slug === options.tenant)?.tenantId ?? options.tenant;
    if (!isUuid(tenantId)) program.error(`--tenant must be a UUID or one of ${DEMO_DISTRICTS.map((d) => d.slug).join(', ')}`);
    const config = readConfig();
    if (config.jwt.jwksUrl || config.jwt.jwksFile)
      program.error('the gateway is configured for an external issuer (JWKS_URL/JWKS_FILE); get tokens from it');
    const keys = await loadOrCreateKeys(config.dataDir);
    process.stdout.write(
      `${await issueDevToken(keys, { tenantId, subject: options.subject, tenantClaim: config.jwt.tenantClaim, expiresIn: options.expiresIn })}\n`,
    );
  });
await program.parseAsync();
