/**
 * `npm run district -- <command>`: the operator's district lifecycle, run as the owner roles of the service
 * databases, never reachable through the tenant graph (docs/district-lifecycle.md). Exit codes: 0 done, 1 failed,
 * 2 refused (bad input or a precondition not met).
 */
import { Command, CommanderError } from 'commander';
import { runCli } from '../operator-cli.ts';
import { registerDataCommands } from './data-commands.ts';
import { registerLifecycleCommands } from './lifecycle-commands.ts';

const program = new Command('district').description('Onboard, suspend, export, offboard and restore districts').exitOverride();
registerLifecycleCommands(program);
registerDataCommands(program);

void runCli('district', async () => {
  try {
    await program.parseAsync();
  } catch (error) {
    // Commander has printed the help, or the usage error itself: --help is done, a bad command line is refused.
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  return Number(process.exitCode ?? 0);
});
