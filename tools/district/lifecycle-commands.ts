import type { Command } from 'commander';

/** create, list, show, suspend, resume. */
export function registerLifecycleCommands(program: Command): void {
  void program;
}
