import type { Command } from 'commander';
import { formatStatus, loadRunFile, readStatus } from '../runs/index.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('progress of a run: tasks, throughput, ETA, jobs in flight, failures and quarantined tasks')
    .requiredOption('--run <file>', 'the run file (YAML)')
    .option('--json', 'print the progress as JSON (the same shape as state/progress.json)', false)
    .action(async (flags: { run: string; json: boolean }) => {
      const progress = await readStatus(await loadRunFile(flags.run));
      process.stdout.write(flags.json ? JSON.stringify(progress, null, 2) + '\n' : formatStatus(progress));
    });
}
