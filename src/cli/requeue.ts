import type { Command } from 'commander';
import { leaseFor, leaseHolder, loadRunFile, requeueTasks } from '../runs/index.js';
import { taskList } from './options.js';

export function registerRequeue(program: Command): void {
  program
    .command('requeue')
    .description('clear the quarantine and failed attempts of tasks, so the next submitter tick runs them again')
    .requiredOption('--run <file>', 'the run file (YAML)')
    .requiredOption('--tasks <list>', 'comma-separated task ids (repeatable)', taskList)
    .action(async (flags: { run: string; tasks: string[] }) => {
      const run = await loadRunFile(flags.run);
      const result = await requeueTasks(run, flags.tasks, leaseFor(run, leaseHolder(), 60_000));
      process.stdout.write(
        `requeued ${result.cleared.length} task(s)${result.cleared.length ? `: ${result.cleared.join(', ')}` : ''}` +
          (result.untouched.length
            ? `; not failed or quarantined (nothing to clear): ${result.untouched.join(', ')}`
            : '') +
          '\n',
      );
    });
}
