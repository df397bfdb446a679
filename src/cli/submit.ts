import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { UsageError } from '../errors/index.js';
import { rootLogger } from '../observability/index.js';
import {
  SubmitterMetrics,
  backendFor,
  failureOf,
  leaseFor,
  leaseHolder,
  pushRunMetrics,
  runLabelOf,
  startDaemon,
  submitOnce,
  type Lease,
  type RunFile,
  type RunOutcome,
} from '../runs/index.js';
import { nonNegativeInt, positiveInt } from './options.js';

/** How long a tick stopped by SIGTERM tries to release its leases before it exits (well within a pod's grace period). */
const SIGTERM_RELEASE_MS = 5_000;

interface SubmitFlags {
  run: string[];
  once: boolean;
  schedule?: string;
  budgetSeconds: number;
  pollSeconds: number;
  metricsPort: number;
  metricsHost: string;
  pushgateway?: string;
  leaseSeconds: number;
}

function summary(o: RunOutcome): string {
  const p = o.report?.progress;
  if (o.error !== undefined || !o.report) return `${o.file}: failed (see the log)\n`;
  const runId = o.run?.run_id ?? o.file;
  const paused = o.run?.paused ? '; paused: nothing new submitted' : '';
  if (!o.report.acted)
    return `run ${runId}: lease held by ${o.report.lease.holder ?? '?'} until ${o.report.lease.expires_at ?? '?'}; nothing done\n`;
  // No progress yet: the tick only looked after the manifest job (manifest_in_job), so there are no tasks to count.
  if (!p) return `run ${runId}: no manifest yet; submitted ${o.report.submitted.length} manifest jobs${paused}\n`;
  return (
    `run ${runId}: ${p.tasks.done}/${p.tasks.total} tasks done, ${p.tasks.in_flight} in flight, ${p.tasks.quarantined} quarantined; ` +
    `submitted ${o.report.submitted.length} jobs, stopped ${o.report.stopped.length}${p.complete ? '; complete' : ''}${paused}\n`
  );
}

export function registerSubmit(program: Command): void {
  program
    .command('submit')
    .description('reconcile runs: resubmit what failed or vanished, submit pending tasks as Ray jobs, verify when done')
    .requiredOption(
      '--run <file-or-folder>',
      'a run file (YAML), or a folder of them such as the mounted runs ConfigMap: every run file in it is reconciled (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--once', 'one round over the run files, then exit (the CronJob)', false)
    .option('--schedule <cron>', 'keep running and reconcile on this cron schedule, serving /healthz and /metrics')
    .option(
      '--budget-seconds <n>',
      'with --once: for this long after the first round, tick a run again as soon as one of its jobs ends (keep it shorter than the CronJob period)',
      nonNegativeInt,
      0,
    )
    .option('--poll-seconds <n>', 'how often the backend is asked whether a job in flight ended', positiveInt, 5)
    .option(
      '--metrics-port <port>',
      'port of /metrics and /healthz with --schedule (0: any free port)',
      nonNegativeInt,
      9464,
    )
    .option('--metrics-host <host>', 'address to serve /metrics on', '0.0.0.0')
    .option(
      '--pushgateway <url>',
      'with --once: push the run metrics to this Prometheus Pushgateway after the tick (default: $TOKENIZE_WIKI_PUSHGATEWAY_URL)',
      process.env.TOKENIZE_WIKI_PUSHGATEWAY_URL || undefined,
    )
    .option(
      '--lease-seconds <n>',
      'how long the run lease lasts without renewal (a crashed submitter blocks others this long)',
      positiveInt,
      120,
    )
    .action(async (flags: SubmitFlags) => {
      if (flags.once === (flags.schedule !== undefined))
        throw new UsageError('give exactly one of --once and --schedule <cron>');
      // One holder name per process: the daemon renews its own lease across ticks.
      const holder = leaseHolder();
      // The newest lease of each run: the one a pass in progress holds (passes run one at a time).
      const leases = new Map<string, Lease>();
      const deps = (run: RunFile) => {
        const lease = leaseFor(run, holder, flags.leaseSeconds * 1000);
        leases.set(run.run_id, lease);
        return { backend: backendFor(run.backend), lease };
      };
      if (flags.once) {
        // A CronJob tick runs as PID 1, where SIGTERM does nothing without a handler: an evicted or deleted tick ran
        // on until the kubelet's SIGKILL. Stopping at once is safe: a tick may be killed at any point, the next redoes
        // it. A lease held mid-pass is released first (it would block the next tick for --lease-seconds); a pass
        // still running finds it gone at its next renew and submits nothing more.
        process.once('SIGTERM', () => {
          rootLogger.warn('stopping on SIGTERM: the next tick takes over');
          const released = Promise.allSettled([...leases.values()].map((lease) => lease.release()));
          void Promise.race([released, sleep(SIGTERM_RELEASE_MS)]).then(() => process.exit(143));
        });
        // Levels only: a CronJob tick is a new process each time, so its counters would restart at every push.
        const metrics = new SubmitterMetrics({ processMetrics: false, counters: false });
        const outcomes = await submitOnce({
          paths: flags.run,
          deps,
          logger: rootLogger,
          budgetMs: flags.budgetSeconds * 1000,
          pollMs: flags.pollSeconds * 1000,
          onTick: (o, seconds) => metrics.observeTick(runLabelOf(o), seconds, o.report, o.error),
        });
        for (const o of outcomes) process.stdout.write(summary(o));
        if (flags.pushgateway) await pushRunMetrics(flags.pushgateway, metrics, rootLogger);
        const failure = failureOf(outcomes);
        if (failure) throw failure;
        return;
      }
      const daemon = await startDaemon({
        paths: flags.run,
        schedule: flags.schedule as string,
        host: flags.metricsHost,
        port: flags.metricsPort,
        pollMs: flags.pollSeconds * 1000,
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
