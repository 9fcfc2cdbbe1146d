/**
 * `npm run load:ci`: the CI-sized load run, self-contained. A throw-away platform (embedded PostgreSQL in a
 * temporary folder, free ports) started as `npm start` runs it (one process per service), the `ci` seed
 * preset through the real seed path, a tokens file, then the `ci` scenario (5 s unrecorded warm-up, 25 s
 * measured, loose thresholds). Exits 1 when a threshold fails; everything it started is stopped and removed.
 * startCiPlatform is that platform, seeded, for tests that run their own load against it (test/prometheus/).
 */
import '../../config/node-version.ts';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { environmentWith, readConfig } from '../../config/config.ts';
import { loadOrCreateKeys } from '../../dev/keys.ts';
import { freePort, freeServicePorts, startPlatformProcess, type PlatformProcess } from '../bench/platform-process.ts';
import type { TokensFile } from '../scenarios/scenario.ts';
import { openServiceDatabases } from '../seed/databases.ts';
import { PRESETS, seedScaleData } from '../seed/seed.ts';
import { buildTokensFile } from '../seed/tokens.ts';
import { loadScenario, runScenario, writeRunFiles } from './run.ts';
import { formatReport } from './report.ts';

/** A throw-away platform in processes with the `ci` seed and a tokens file for it; stop() stops and removes everything. */
export interface CiPlatform {
  platform: PlatformProcess;
  tokens: TokensFile;
  /** The environment the platform was started with (its ports, metrics ports included). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startCiPlatform(): Promise<CiPlatform> {
  const dataDir = await mkdtemp(join(tmpdir(), 'k12-load-ci-'));
  // Run as root, PostgreSQL runs as its own user, which must be able to enter the folder.
  await chmod(dataDir, 0o755);
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    DATABASE_URL: '', // always a fresh embedded server: nothing shared with other runs
    DB_PREFIX: 'k12',
    EMBEDDED_PG_PORT: String(await freePort()),
    ...(await freeServicePorts()),
  };
  console.log(`load:ci: platform in ${dataDir}`);
  const removeData = () => rm(dataDir, { recursive: true, force: true });
  const platform = await startPlatformProcess(env, join(dataDir, 'platform.log')).catch(async (error: unknown) => {
    await removeData();
    throw error;
  });
  const stop = async () => {
    await platform.stop();
    await removeData();
  };
  try {
    const config = readConfig(environmentWith(env));
    const databases = await openServiceDatabases(config);
    const pools = Object.fromEntries(
      Object.entries(databases.byService).map(([s, db]) => [s, new pg.Pool({ connectionString: db.ownerUrl, max: 3 })]),
    );
    try {
      const seeded = await seedScaleData(pools, { ...PRESETS.ci, seed: 'k12-load', concurrency: 2, progress: false });
      console.log(`load:ci: seeded ${seeded.districts} districts, ${seeded.rows} rows in ${seeded.seconds.toFixed(1)} s`);
      const tokens = await buildTokensFile(pools, await loadOrCreateKeys(config.dataDir), config.jwt.tenantClaim, {
        target: platform.gatewayUrl,
        expiresIn: '1h',
        all: false,
      });
      tokens.expiresAt = new Date(Date.now() + 3600_000).toISOString();
      return { platform, tokens, env, stop };
    } finally {
      await Promise.all(Object.values(pools).map((pool) => pool.end()));
      await databases.close();
    }
  } catch (error) {
    await stop();
    throw error;
  }
}

async function main(): Promise<number> {
  const { tokens, stop } = await startCiPlatform();
  try {
    const scenario = await loadScenario('ci');
    const report = await runScenario(scenario, tokens, { warmupSeconds: 5 });
    const files = await writeRunFiles(report, scenario, resolve('load/out/ci'));
    console.log(`${formatReport(report)}\nreport: ${files.json}\nchart:  ${files.svg}`);
    return report.passed ? 0 : 1;
  } finally {
    await stop();
  }
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`load:ci failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(2);
    },
  );
}
