import { createServer, type Server } from 'node:http';
import { basename } from 'node:path';
import cron from 'node-cron';
import { UsageError, messageOf } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { SubmitterMetrics } from './metrics.js';
import { failureOf, reconcileAll, waitForJobEnd, type DepsFor, type RunOutcome } from './submitter.js';

export interface DaemonOptions {
  /** Run files, or folders of them (re-listed every tick: a run file added to the ConfigMap is picked up). */
  paths: readonly string[];
  schedule: string;
  host: string;
  port: number;
  logger: Logger;
  deps: DepsFor;
  /** /healthz fails when a tick has been running longer than this (a hung tick; restarting the pod helps). */
  stuckAfterMs?: number;
  /** How often the backends are asked whether a job in flight ended (which starts the next tick at once). */
  pollMs?: number;
}

export interface Daemon {
  readonly port: number;
  readonly metrics: SubmitterMetrics;
  /** Run one round now (skipped if one is running); resolves when it has finished. */
  tick(): Promise<RunOutcome[] | undefined>;
  close(): Promise<void>;
}

/** The label of a run file's series: its run id, or the file's name when it could not be read. */
export const runLabelOf = (o: RunOutcome): string => o.run?.run_id ?? basename(o.file);

/**
 * `submit --schedule`: reconcile every run file on a cron schedule and as soon as a job in flight ends (so slots never
 * wait for the next scheduled tick), serve /healthz and Prometheus /metrics.
 */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  if (!cron.validate(options.schedule))
    throw new UsageError(`--schedule: "${options.schedule}" is not a cron expression`);
  const metrics = new SubmitterMetrics();
  const logger = options.logger;
  const stuckAfterMs = options.stuckAfterMs ?? 30 * 60_000;
  const pollMs = options.pollMs ?? 5_000;
  const closing = new AbortController();
  let running: Promise<RunOutcome[] | undefined> | undefined;
  let runningSince: number | undefined;
  let runIds: string[] = [];
  let lastSuccess: string | undefined;
  let lastError: string | undefined;
  let watching = false;

  const submitter = {
    paths: options.paths,
    deps: options.deps,
    logger,
    onTick: (o: RunOutcome, seconds: number) => metrics.observeTick(runLabelOf(o), seconds, o.report, o.error),
  };

  const roundOnce = async (): Promise<RunOutcome[] | undefined> => {
    runningSince = Date.now();
    try {
      const outcomes = await reconcileAll(submitter);
      runIds = outcomes.map(runLabelOf);
      lastError = failureOf(outcomes)?.message;
      if (!lastError) lastSuccess = new Date().toISOString();
      void watch(outcomes);
      return outcomes;
    } catch (error) {
      // The run-file folder itself could not be listed.
      lastError = messageOf(error);
      logger.error({ err: lastError }, 'reconcile round failed; the next tick retries');
      return undefined;
    } finally {
      runningSince = undefined;
    }
  };
  const tick = (): Promise<RunOutcome[] | undefined> => {
    if (running) return running.then(() => undefined);
    running = roundOnce().finally(() => (running = undefined));
    return running;
  };
  // Between scheduled ticks: the moment a job in flight ends, tick again (one watcher at a time).
  const watch = async (outcomes: readonly RunOutcome[]): Promise<void> => {
    if (watching) return;
    watching = true;
    try {
      const freed = await waitForJobEnd(outcomes, {
        ...submitter,
        deadline: Number.POSITIVE_INFINITY,
        pollMs,
        signal: closing.signal,
      });
      if (freed.length > 0 && !closing.signal.aborted) setImmediate(() => void tick());
    } finally {
      watching = false;
    }
  };

  const { server, port } = await serveStatus(options, metrics, () => ({
    stuck: runningSince !== undefined && Date.now() - runningSince > stuckAfterMs,
    runs: runIds,
    last_success: lastSuccess ?? null,
    last_error: lastError ?? null,
  }));
  logger.info(
    { schedule: options.schedule, runs: options.paths, metrics: `http://${options.host}:${port}/metrics` },
    'submitter daemon started',
  );

  const task = cron.schedule(options.schedule, () => tick(), { noOverlap: true, name: 'reconcile' });
  void tick(); // the first tick does not wait for the schedule

  return {
    port,
    metrics,
    tick,
    async close() {
      closing.abort();
      await task.stop();
      await task.destroy();
      await running;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Health {
  stuck: boolean;
  runs: string[];
  last_success: string | null;
  last_error: string | null;
}

/** The daemon's HTTP side: Prometheus /metrics, and /healthz (503 while a tick is stuck). */
async function serveStatus(
  options: DaemonOptions,
  metrics: SubmitterMetrics,
  health: () => Health,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: unknown) => res.writeHead(500).end(messageOf(error)),
      );
    } else if (path === '/healthz') {
      const { stuck, ...fields } = health();
      res
        .writeHead(stuck ? 503 : 200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ok: !stuck, ...fields }) + '\n');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : options.port };
}
