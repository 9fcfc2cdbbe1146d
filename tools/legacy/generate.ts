/**
 * `npm run legacy:generate -- --source 'postgres://postgres@127.0.0.1:5432/district_{slug}' --districts 50 --students 2000`
 * Creates N legacy per-district databases (deterministic for a seed).
 */
import '../../config/node-version.ts';
import { Command } from 'commander';
import { readConfig } from '../../config/config.ts';
import cliProgress from 'cli-progress';
import pLimit from 'p-limit';
import { fixtureDistricts, generateLegacyDistrict } from './fixtures.ts';
import { SourceTemplate } from './source-url.ts';
import { positiveInt } from '../consolidation/cli-options.ts';

const program = new Command('legacy:generate')
  .description('create N legacy per-district databases with the legacy schema and deterministic data')
  .option(
    '--source <url>',
    'URL template of the district databases, containing {slug} (env LEGACY_SOURCE_URL)',
    readConfig().tools.legacySourceUrl,
  )
  .requiredOption('--districts <n>', 'number of districts', positiveInt)
  .requiredOption('--students <n>', 'students per district', positiveInt)
  .option('--seed <seed>', 'seed of every generated value', '1')
  .option('--jobs <n>', 'districts generated at once', positiveInt, 2)
  .option('--replace', 'drop and recreate district databases that already exist', false)
  .action(async (options: { source?: string; districts: number; students: number; seed: string; jobs: number; replace: boolean }) => {
    if (!options.source) program.error('--source (or LEGACY_SOURCE_URL) is required');
    const source = new SourceTemplate(options.source!);
    const districts = fixtureDistricts(options.districts);
    const bar = new cliProgress.SingleBar(
      { format: 'legacy districts {bar} {value}/{total} {eta_formatted}', stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(districts.length, 0);
    const started = performance.now();
    try {
      // `jobs` at once; after a failure no new district starts.
      const limit = pLimit(options.jobs);
      await limit.map(districts, (district) =>
        generateLegacyDistrict({ source, students: options.students, seed: options.seed, replace: options.replace }, district).then(
          () => bar.increment(),
          (error: unknown) => {
            limit.clearQueue();
            throw error;
          },
        ),
      );
    } finally {
      bar.stop();
    }
    console.log(
      JSON.stringify(
        {
          districts: districts.map((d) => source.databaseOf(d.slug)),
          studentsPerDistrict: options.students,
          seed: options.seed,
          seconds: (performance.now() - started) / 1000,
        },
        null,
        2,
      ),
    );
  });

await program.parseAsync().catch((error: Error) => {
  console.error(`legacy:generate: ${error.message}`);
  process.exitCode = 1;
});
