import type { Command } from 'commander';

/** export, offboard, restore. */
export function registerDataCommands(program: Command): void {
  void program;
}
