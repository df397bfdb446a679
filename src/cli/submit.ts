import type { Command } from 'commander';
import { UsageError } from '../config/errors.js';
import { rootLogger } from '../observability/logger.js';
import { backendFor, leaseFor, leaseHolder, loadRunFile, reconcileOnce, startDaemon, type RunFile } from '../runs/index.js';
import { nonNegativeInt, positiveInt } from './options.js';

interface SubmitFlags {
  run: string;
  once: boolean;
  schedule?: string;
  metricsPort: number;
  metricsHost: string;
  leaseSeconds: number;
}

export function registerSubmit(program: Command): void {
  program
    .command('submit')
    .description('reconcile a run: resubmit what failed or vanished, submit pending tasks as Ray jobs, verify when done')
    .requiredOption('--run <file>', 'the run file (YAML)')
    .option('--once', 'one reconcile tick, then exit (the CronJob)', false)
    .option('--schedule <cron>', 'keep running and reconcile on this cron schedule, serving /healthz and /metrics')
    .option('--metrics-port <port>', 'port of /metrics and /healthz with --schedule (0: any free port)', nonNegativeInt, 9464)
    .option('--metrics-host <host>', 'address to serve /metrics on', '0.0.0.0')
    .option('--lease-seconds <n>', 'how long the run lease lasts without renewal (a crashed submitter blocks others this long)', positiveInt, 120)
    .action(async (flags: SubmitFlags) => {
      if (flags.once === (flags.schedule !== undefined)) throw new UsageError('give exactly one of --once and --schedule <cron>');
      // One holder name per process: the daemon renews its own lease across ticks.
      const holder = leaseHolder();
      const deps = (run: RunFile) => ({ backend: backendFor(run.backend), lease: leaseFor(run, holder, flags.leaseSeconds * 1000) });
      if (flags.once) {
        const run = await loadRunFile(flags.run);
        const report = await reconcileOnce(run, { ...deps(run), logger: rootLogger });
        const p = report.progress;
        process.stdout.write(
          !report.acted
            ? `run ${run.run_id}: lease held by ${report.lease.holder ?? '?'} until ${report.lease.expires_at ?? '?'}; nothing done\n`
            : `run ${run.run_id}: ${p?.tasks.done}/${p?.tasks.total} tasks done, ${p?.tasks.in_flight} in flight, ${p?.tasks.quarantined} quarantined; ` +
                `submitted ${report.submitted.length} jobs, stopped ${report.stopped.length}${p?.complete ? '; complete' : ''}\n`,
        );
        return;
      }
      const daemon = await startDaemon({
        runPath: flags.run,
        schedule: flags.schedule as string,
        host: flags.metricsHost,
        port: flags.metricsPort,
        logger: rootLogger,
        deps,
      });
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          resolve();
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      rootLogger.info('stopping: finishing the running tick');
      await daemon.close();
    });
}
