/**
 * `npm run district -- <command>`: the operator's district lifecycle, run as the owner roles of the service
 * databases, never reachable through the tenant graph (docs/district-lifecycle.md). Exit codes: 0 done, 1 failed,
 * 2 refused (bad input or a precondition not met).
 */
import { Command } from 'commander';
import { runCli } from '../operator-cli.ts';
import { registerDataCommands } from './data-commands.ts';
import { registerLifecycleCommands } from './lifecycle-commands.ts';

const program = new Command('district').description('Onboard, suspend, export, offboard and restore districts').exitOverride();
registerLifecycleCommands(program);
registerDataCommands(program);

void runCli('district', async () => {
  await program.parseAsync();
  return Number(process.exitCode ?? 0);
});
