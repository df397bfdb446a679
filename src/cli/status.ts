import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import { createLogUpdate } from 'log-update';
import {
  formatStatus,
  loadRunFile,
  NoManifestYet,
  readStatus,
  watchOutcome,
  type WatchOutcome,
} from '../runs/index.js';
import { positiveInt } from './options.js';

interface StatusFlags {
  run: string;
  json: boolean;
  watch: boolean;
  interval: number;
}

/** One look at the run: its table and where a watch stands, or why there is no table yet. */
async function look(file: string): Promise<{ text: string; outcome: WatchOutcome }> {
  try {
    const progress = await readStatus(await loadRunFile(file));
    return { text: formatStatus(progress), outcome: watchOutcome(progress) };
  } catch (error) {
    if (error instanceof NoManifestYet) return { text: `${error.message}\n`, outcome: 'watching' };
    throw error;
  }
}

const HEADERS: Record<WatchOutcome, (interval: number) => string> = {
  watching: (interval) => `every ${interval} s until the run completes (Ctrl-C to stop)`,
  complete: () => 'the run is complete',
  'needs-attention': () => 'the run needs attention: nothing is left to run but quarantined tasks, or verify failed',
};

/**
 * `status --watch`, the habit of `kubectl get -w` and `watch`: a look every interval until the run completes or needs a
 * person; redrawn in place on a terminal (log-update), a new table each time elsewhere. Returns the exit code.
 */
async function watch(flags: StatusFlags, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const redraw = out.isTTY ? createLogUpdate(out) : undefined;
  for (;;) {
    const { text, outcome } = await look(flags.run);
    const screen = `${new Date().toTimeString().slice(0, 8)}  ${HEADERS[outcome](flags.interval)}\n\n${text}`;
    if (redraw) redraw(screen);
    else out.write(`${screen}\n`);
    if (outcome !== 'watching') {
      redraw?.done();
      return outcome === 'complete' ? 0 : 1;
    }
    await sleep(flags.interval * 1000);
  }
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('progress of a run: tasks, throughput, ETA, jobs in flight, failures and quarantined tasks')
    .requiredOption('--run <file>', 'the run file (YAML)')
    .option('--json', 'print the progress as JSON (the same shape as state/progress.json)', false)
    .addOption(
      new Option(
        '--watch',
        'look again every --interval seconds until the run completes (exit 0) or needs attention (exit 1)',
      )
        .default(false)
        .conflicts('json'),
    )
    .option('--interval <seconds>', 'seconds between two looks of --watch', positiveInt, 5)
    .action(async (flags: StatusFlags) => {
      if (flags.watch) {
        process.exitCode = await watch(flags);
        return;
      }
      const progress = await readStatus(await loadRunFile(flags.run));
      process.stdout.write(flags.json ? JSON.stringify(progress, null, 2) + '\n' : formatStatus(progress));
    });
}
