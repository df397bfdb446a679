import { createServer, type Server } from 'node:http';
import cron from 'node-cron';
import { UsageError, messageOf } from '../config/errors.js';
import type { Logger } from '../observability/logger.js';
import { SubmitterMetrics } from './metrics.js';
import { reconcileOnce, type ReconcileDeps, type TickReport } from './reconcile.js';
import { loadRunFile, type RunFile } from './run-file.js';

export interface DaemonOptions {
  runPath: string;
  schedule: string;
  host: string;
  port: number;
  logger: Logger;
  /** Backend and lease for a run (called each tick: the run file is re-read, so a changed ConfigMap takes effect). */
  deps: (run: RunFile) => Omit<ReconcileDeps, 'logger'>;
  /** /healthz fails when a tick has been running longer than this (a hung tick; restarting the pod helps). */
  stuckAfterMs?: number;
}

export interface Daemon {
  readonly port: number;
  readonly metrics: SubmitterMetrics;
  /** Run one tick now (skipped if one is running); resolves when it has finished. */
  tick(): Promise<TickReport | undefined>;
  close(): Promise<void>;
}

/** `submit --schedule`: reconcile on a cron schedule, serve /healthz and Prometheus /metrics. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  if (!cron.validate(options.schedule)) throw new UsageError(`--schedule: "${options.schedule}" is not a cron expression`);
  const metrics = new SubmitterMetrics();
  const logger = options.logger;
  const stuckAfterMs = options.stuckAfterMs ?? 30 * 60_000;
  let running: Promise<TickReport | undefined> | undefined;
  let runningSince: number | undefined;
  let runId = 'unknown';
  let lastSuccess: string | undefined;
  let lastError: string | undefined;

  const tickOnce = async (): Promise<TickReport | undefined> => {
    const started = Date.now();
    runningSince = started;
    let report: TickReport | undefined;
    try {
      const run = await loadRunFile(options.runPath);
      runId = run.run_id;
      report = await reconcileOnce(run, { ...options.deps(run), logger });
      lastSuccess = new Date().toISOString();
      lastError = undefined;
      metrics.observeTick(runId, (Date.now() - started) / 1000, report);
    } catch (error) {
      lastError = messageOf(error);
      logger.error({ run_id: runId, err: lastError }, 'reconcile tick failed; the next tick retries');
      metrics.observeTick(runId, (Date.now() - started) / 1000, undefined, error);
    } finally {
      runningSince = undefined;
    }
    return report;
  };
  const tick = (): Promise<TickReport | undefined> => {
    if (running) return running.then(() => undefined);
    running = tickOnce().finally(() => (running = undefined));
    return running;
  };

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(messageOf(error)),
      );
    } else if (path === '/healthz') {
      const stuck = runningSince !== undefined && Date.now() - runningSince > stuckAfterMs;
      res
        .writeHead(stuck ? 503 : 200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ok: !stuck, run_id: runId, last_success: lastSuccess ?? null, last_error: lastError ?? null }) + '\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  logger.info({ schedule: options.schedule, metrics: `http://${options.host}:${port}/metrics` }, 'submitter daemon started');

  const task = cron.schedule(options.schedule, () => tick(), { noOverlap: true, name: 'reconcile' });
  void tick(); // the first tick does not wait for the schedule

  return {
    port,
    metrics,
    tick,
    async close() {
      await task.stop();
      await task.destroy();
      await running;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
